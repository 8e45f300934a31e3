#!/bin/sh
# pam-memfa-hook.sh: an example pam_exec(8) hook that asks memfa(1) about a login.
#
# Two uses, chosen by the hook's first argument:
#
#   code (the default): the PAM token is the second factor, a one-time code (TOTP, SMS or email)
#   or a recovery code, e.g. the second step of a webmail or single sign-on login whose password
#   was checked before. With expose_authtok, pam_exec writes the token, followed by a NUL, to this
#   script's standard input; it goes from there straight into `memfa verify --code-stdin`: it is
#   never put on a command line (where ps(1) shows it), into a variable, a file or a log.
#
#     auth  required  pam_exec.so quiet expose_authtok /usr/local/libexec/memfa/pam-memfa-hook.sh code
#
#   password: the PAM token is the mailbox's password (an IMAP, POP3 or SMTP login through PAM,
#   after pam_unix or the like has checked it). The token is not memfa's business and is never
#   read (do not give expose_authtok). The hook asks `memfa verify --no-send`, which decides
#   without sending a code or counting anything: the login passes only when memfa needs no second
#   factor for it (a remembered address, a trusted network, mode never). A mail client cannot
#   answer a challenge, so a challenge or an enrolment is a refusal.
#
#     auth  required  pam_exec.so quiet /usr/local/libexec/memfa/pam-memfa-hook.sh password
#
#   For app passwords and the primaryPassword setting, use memfa's Dovecot passdb instead
#   (examples/dovecot, memfa-dovecot(7)): it asks login.check on the hook socket, without a
#   process per login.
#
# It fails closed: the PAM step succeeds only when memfa answers allow (exit 0). Deny (1),
# challenge (2), enroll (3), a usage error (64), the daemon being unavailable (69), a temporary
# failure (75), a configuration error (78: no provider can give the user a factor) and everything
# else refuse the login.
#
# Needs: PAM_USER = the mailbox address, PAM_RHOST = the client's IP address (Dovecot passes the
# address; a host name is refused by memfa). The process running PAM must be able to connect to
# memfa's hook socket (be in the socket's group, e.g. memfa; see examples/memfa.service). A hook
# that starts Node needs an address space larger than Dovecot's default_vsz_limit (256M): set
# vsz_limit for the auth service (memfa-dovecot(7)).
#
# Install it owned by root, mode 0755, in a directory only root can write to.

set -u
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
umask 077

# The memfa command; MEMFA_CONFIG (if set in PAM's environment) selects its configuration.
MEMFA=/usr/bin/memfa

log() {
  # To pam_exec's log (its "log=" option) or the calling service's standard error.
  printf 'memfa-hook: %s\n' "$*" >&2
}

if [ "${PAM_TYPE:-}" != "auth" ]; then
  log "only for the auth phase (PAM_TYPE=${PAM_TYPE:-unset}); refusing"
  exit 1
fi

user=${PAM_USER:-}
ip=${PAM_RHOST:-}
if [ -z "$user" ] || [ -z "$ip" ]; then
  log "PAM_USER or PAM_RHOST is empty; refusing"
  exit 1
fi

# --opt=value: a value starting with "-" can never be taken for an option. memfa checks both.
# The answer on standard output is not needed.
case ${1:-code} in
  code)
    # Standard input (the token, the code) is inherited.
    "$MEMFA" verify --user="$user" --ip="$ip" --code-stdin >/dev/null
    status=$?
    ;;
  password)
    # The token is a password: memfa never gets it.
    "$MEMFA" verify --user="$user" --ip="$ip" --no-send </dev/null >/dev/null
    status=$?
    ;;
  *)
    log "unknown mode '$1' (expected code or password); refusing"
    exit 1
    ;;
esac

case $status in
  0)
    exit 0
    ;;
  1)
    log "denied: $user from $ip"
    ;;
  2)
    log "second factor needed: $user from $ip"
    ;;
  3)
    log "not enrolled yet: $user from $ip (enrol through the webmail or memfa enroll)"
    ;;
  69)
    log "memfa daemon unavailable; refusing $user from $ip"
    ;;
  75)
    log "temporary failure; refusing $user from $ip"
    ;;
  78)
    log "no provider can give $user a second factor (a configuration error: see memfa explain $user --ip $ip); refusing $user from $ip"
    ;;
  *)
    log "memfa verify exited with status $status; refusing $user from $ip"
    ;;
esac
exit 1
