-- memfa's state for several daemons on one database: the tables behind the services' state ports
-- (src/services/store-ports.ts), implemented by src/store/postgres/.
--
-- Documents (settings, the small named documents of meta) are json, not jsonb: read back with
-- the key order the services wrote, as the file store does.
--
-- Times are epoch milliseconds (bigint), as the ports pass them in. Secrets arrive sealed (TOTP
-- secrets) or as keyed hashes (codes, recovery codes, app passwords); the key file never enters
-- the database.
--
-- What a check-then-act decides on lives in ONE row per mailbox (mailboxes): the TOTP secret and
-- its last accepted step, the pending secret, the open one-time code, the failures of both kinds,
-- the grace logins. Each such operation is one statement that locks that row (FOR UPDATE), decides
-- from the version it locked, which under READ COMMITTED is the latest committed one, and writes
-- in the same statement, answering through RETURNING. A second row read in the same statement would
-- be seen as of the statement's start, not as of the lock: that is why these are columns and not
-- tables of their own. Lists (remembered addresses and countries, recovery codes, app passwords)
-- have a row per entry; they are changed only by statements that hold the mailbox's row lock.

CREATE TABLE mailboxes (
  -- "C": addresses sort by code point, as the file store's (JavaScript's) sort of ASCII does.
  address text COLLATE "C" PRIMARY KEY,
  domain text COLLATE "C" GENERATED ALWAYS AS (substring(address FROM '@([^@]*)$')) STORED,
  settings json NOT NULL DEFAULT '{}',
  user_settings json NOT NULL DEFAULT '{}',
  phone text,
  alt_email text,
  -- The active TOTP secret, sealed; its last accepted step (replay protection).
  totp_sealed text,
  totp_activated_at bigint,
  totp_last_step bigint,
  -- The pending secret of an enrolment.
  pending_sealed text,
  pending_created_at bigint,
  pending_expires_at bigint,
  pending_proved boolean,
  -- The open one-time code, as its keyed hash (and, where the service sealed it, the code itself).
  code_hash text,
  code_sealed text,
  code_provider text CHECK (code_provider IN ('sms', 'email')),
  code_destination text,
  code_created_at bigint,
  code_expires_at bigint,
  code_failed_tries integer,
  code_sends integer,
  code_last_sent_at bigint,
  -- Failures by kind (core/lockout.ts): all null means none since the last success or unlock.
  known_consecutive integer,
  known_locked_until bigint,
  known_hard_locked boolean,
  known_last_failure_at bigint,
  elsewhere_consecutive integer,
  elsewhere_locked_until bigint,
  elsewhere_hard_locked boolean,
  elsewhere_last_failure_at bigint,
  -- Logins let in by an enrolment grace; null: none (the record has no such field).
  grace_logins integer,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  CHECK ((totp_sealed IS NULL) = (totp_activated_at IS NULL)),
  CHECK ((pending_sealed IS NULL) = (pending_created_at IS NULL) AND (pending_sealed IS NULL) = (pending_expires_at IS NULL)),
  CHECK ((code_hash IS NULL) = (code_provider IS NULL) AND (code_hash IS NULL) = (code_expires_at IS NULL)
    AND (code_hash IS NULL) = (code_failed_tries IS NULL) AND (code_hash IS NULL) = (code_sends IS NULL)),
  CHECK ((known_consecutive IS NULL) = (known_hard_locked IS NULL)),
  CHECK ((elsewhere_consecutive IS NULL) = (elsewhere_hard_locked IS NULL))
);
CREATE INDEX mailboxes_domain ON mailboxes (domain, address);

-- The remembered lists keep the services' order (most recent first, core/decide.ts): ord.
CREATE TABLE remembered_ips (
  address text COLLATE "C" NOT NULL REFERENCES mailboxes ON DELETE CASCADE,
  ord integer NOT NULL,
  ip text NOT NULL,
  first_seen bigint NOT NULL,
  last_seen bigint NOT NULL,
  PRIMARY KEY (address, ip)
);

CREATE TABLE remembered_countries (
  address text COLLATE "C" NOT NULL REFERENCES mailboxes ON DELETE CASCADE,
  ord integer NOT NULL,
  country text NOT NULL,
  first_seen bigint NOT NULL,
  last_seen bigint NOT NULL,
  PRIMARY KEY (address, country)
);

-- One row per recovery code, in the order they were issued (ord).
CREATE TABLE recovery_codes (
  address text COLLATE "C" NOT NULL REFERENCES mailboxes ON DELETE CASCADE,
  ord integer NOT NULL,
  hash text NOT NULL,
  PRIMARY KEY (address, ord)
);
CREATE INDEX recovery_codes_hash ON recovery_codes (address, hash);

CREATE TABLE app_passwords (
  address text COLLATE "C" NOT NULL REFERENCES mailboxes ON DELETE CASCADE,
  ord integer NOT NULL,
  id text NOT NULL,
  name text NOT NULL,
  hash text NOT NULL,
  protocols text[] NOT NULL,
  networks text[] NOT NULL,
  created_at bigint NOT NULL,
  expires_at bigint,
  last_used_at bigint,
  last_used_ip text,
  last_used_country text,
  uses bigint NOT NULL,
  PRIMARY KEY (address, ord),
  UNIQUE (address, id)
);

CREATE TABLE domains (
  domain text COLLATE "C" PRIMARY KEY,
  settings json NOT NULL,
  updated_at bigint NOT NULL
);

CREATE TABLE global_settings (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  settings json NOT NULL
);
INSERT INTO global_settings (settings) VALUES ('{}');

-- Small named documents: the provider policy, the domain administrators, claims.
CREATE TABLE meta (
  key text COLLATE "C" PRIMARY KEY,
  value json NOT NULL
);

-- Failures of mailboxes without a record (core/lockout.ts unstoredFailureExpired): expires_at is
-- when the entry may go, computed with the policy of its last failure.
CREATE TABLE unstored_failures (
  address text COLLATE "C" PRIMARY KEY,
  consecutive integer NOT NULL,
  locked_until bigint,
  hard_locked boolean NOT NULL,
  last_failure_at bigint,
  expires_at bigint NOT NULL
);
CREATE INDEX unstored_failures_expiry ON unstored_failures (expires_at);

-- The per-source throttle of code checks (core/lockout.ts IpSourceState); f_*: its failure window
-- (null f_failures: none yet). expires_at: from when the row is idle (null while attempts are in
-- flight), so that a sweep can drop it.
CREATE TABLE ip_sources (
  source text COLLATE "C" PRIMARY KEY,
  f_failures integer,
  f_mailboxes text[],
  f_window_start bigint,
  f_locked_until bigint,
  in_flight text[] NOT NULL,
  creating integer NOT NULL,
  created integer NOT NULL,
  created_since bigint NOT NULL,
  expires_at bigint,
  touched_at bigint NOT NULL
);
CREATE INDEX ip_sources_expiry ON ip_sources (expires_at);

-- Send claims within the last hour by key (a mailbox, a destination), oldest first.
CREATE TABLE send_limits (
  key text COLLATE "C" PRIMARY KEY,
  times bigint[] NOT NULL,
  touched_at bigint NOT NULL
);
CREATE INDEX send_limits_touched ON send_limits (touched_at);

-- Failure windows by scope and key (core/lockout.ts IpThrottleRecord).
CREATE TABLE window_counters (
  scope text COLLATE "C" NOT NULL,
  key text COLLATE "C" NOT NULL,
  failures integer NOT NULL,
  mailboxes text[] NOT NULL,
  window_start bigint NOT NULL,
  locked_until bigint,
  expires_at bigint NOT NULL,
  PRIMARY KEY (scope, key)
);
CREATE INDEX window_counters_expiry ON window_counters (expires_at);
