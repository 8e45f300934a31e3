-- memfa-passdb.lua: memfa's second-factor policy for Dovecot logins (IMAP, POP3, ManageSieve,
-- submission, and SMTP AUTH when Postfix uses Dovecot SASL), without a process per login.
--
-- A Dovecot Lua passdb (Dovecot 2.3, dovecot-auth-lua) that asks the memfa daemon, on its hook
-- socket, one question per login: `login.check {user, ip, protocol, password}`. memfa answers
--   allow     an app password of this mailbox matched, for this protocol and network: log in;
--   continue  not an app password, and this mailbox may use its primary password here: the next
--             passdb (the site's own) checks it;
--   deny      refused (e.g. only app passwords are accepted): the login fails, and IMAP, POP3,
--             ManageSieve and submission clients are shown memfa's one-line message.
-- memfa down, a time-out or any unexpected answer is a temporary failure: never a pass.
--
-- Needs lua-socket (socket.unix) and lua-cjson. Installed as /etc/dovecot/memfa-passdb.lua and
-- configured by conf.d/05-memfa.conf (shipped beside this file); see memfa(1), DOVECOT.

local unix = require("socket.unix")
local cjson = require("cjson.safe")

-- The hook socket, from Dovecot's import_environment (05-memfa.conf sets it).
local SOCKET = os.getenv("MEMFA_HOOK_SOCKET") or "/run/memfa/hook.sock"
-- Seconds to wait for memfa; a login waits at most this long before failing temporarily.
local TIMEOUT = tonumber(os.getenv("MEMFA_TIMEOUT_SECONDS") or "") or 3
-- memfa's limit for a password (longer ones are refused before any work is done on them).
local MAX_PASSWORD = 1024

-- Dovecot service name -> memfa protocol. A service not listed here fails closed.
local PROTOCOLS = { imap = "imap", pop3 = "pop3", sieve = "sieve", submission = "smtp", smtp = "smtp" }
-- Services whose login process shows the refusal text to the client. Postfix (service smtp) does
-- not honour nologin, so a refusal there must be a plain failure.
local SHOWS_TEXT = { imap = true, pop3 = true, sieve = true, submission = true }

local R = dovecot.auth

local function ask(params)
  local c = unix()
  c:settimeout(TIMEOUT)
  local ok, err = c:connect(SOCKET)
  if not ok then
    c:close()
    return nil, "cannot reach " .. SOCKET .. ": " .. tostring(err)
  end
  local request = cjson.encode({ jsonrpc = "2.0", id = 1, method = "login.check", params = params })
  ok, err = c:send(request .. "\n")
  if not ok then
    c:close()
    return nil, "cannot send to memfa: " .. tostring(err)
  end
  local line
  line, err = c:receive("*l")
  c:close()
  if not line then return nil, "no answer from memfa: " .. tostring(err) end
  local answer = cjson.decode(line)
  if type(answer) ~= "table" then return nil, "memfa's answer is not JSON" end
  if type(answer.error) == "table" then
    local code = type(answer.error.data) == "table" and answer.error.data.code or answer.error.code
    return nil, "memfa refused the request: " .. tostring(code) .. ": " .. tostring(answer.error.message)
  end
  if type(answer.result) ~= "table" then return nil, "memfa's answer has no result" end
  return answer.result
end

-- Plaintext mechanisms (PLAIN, LOGIN): Dovecot hands the password to this function.
function auth_password_verify(req, pass)
  local protocol = PROTOCOLS[req.service]
  if protocol == nil then
    return R.PASSDB_RESULT_INTERNAL_FAILURE, "memfa: service " .. tostring(req.service) .. " has no memfa protocol; refusing"
  end
  if req.remote_ip == nil or #pass > MAX_PASSWORD then
    return R.PASSDB_RESULT_INTERNAL_FAILURE, "memfa: no client address, or a password longer than " .. MAX_PASSWORD .. " bytes; refusing"
  end
  local r, err = ask({ user = req.user, ip = req.remote_ip, protocol = protocol, password = pass })
  if r == nil then
    -- Dovecot logs this text as the passdb's error; the client is told of a temporary failure.
    return R.PASSDB_RESULT_INTERNAL_FAILURE, "memfa: " .. err
  end
  if r.result == "allow" then
    req:log_info("memfa: allow (" .. tostring(r.reason) .. ")")
    return R.PASSDB_RESULT_OK, {}
  elseif r.result == "continue" then
    req:log_debug("memfa: continue (" .. tostring(r.reason) .. ")")
    return R.PASSDB_RESULT_NEXT, {}
  elseif r.result == "deny" then
    req:log_info("memfa: deny (" .. tostring(r.reason) .. ")")
    if SHOWS_TEXT[req.service] and type(r.message) == "string" then
      -- OK with nologin: the login process refuses the login and shows the reason.
      return R.PASSDB_RESULT_OK, { nologin = "y", reason = r.message }
    end
    return R.PASSDB_RESULT_PASSWORD_MISMATCH, {}
  end
  return R.PASSDB_RESULT_INTERNAL_FAILURE, "memfa: unexpected result " .. tostring(r.result) .. "; refusing"
end

-- Non-plaintext mechanisms (CRAM-MD5, SCRAM, ...) look credentials up instead, and memfa never
-- sees the password. Refuse them here: otherwise the next passdb would let the primary password
-- in past memfa's policy. Offer only PLAIN and LOGIN (over TLS) to clients.
function auth_passdb_lookup(req)
  req:log_warning("memfa: mechanism without a plaintext password; refusing (auth_mechanisms = plain login)")
  return R.PASSDB_RESULT_PASSWORD_MISMATCH, ""
end
