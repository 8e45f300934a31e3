#!/bin/sh
# pam-memfa-hook.sh: an example pam_exec(8) hook that asks memfa(1) about a login.
#
#   /etc/pam.d/<service>:
#     auth  required  pam_exec.so quiet expose_authtok /usr/local/libexec/memfa/pam-memfa-hook.sh
#
# With expose_authtok, pam_exec writes the authentication token, followed by a NUL, to this
# script's standard input. This example is for a PAM service whose token is the second factor: a
# one-time code (TOTP, SMS or email) or a recovery code, e.g. the second step of a webmail or
# single sign-on login whose password was checked before. The token goes from standard input
# straight into `memfa verify --code-stdin`: it is never put on a command line (where ps(1) shows
# it), into a variable, a file or a log.
#
# It fails closed: the PAM step succeeds only when memfa answers allow (exit 0). Deny (1),
# challenge (2), enroll (3), a usage error (64), the daemon being unavailable (69), a temporary
# failure (75), a configuration error (78: no provider can give the user a factor) and everything
# else refuse the login.
#
# Needs: PAM_USER = the mailbox address, PAM_RHOST = the client's IP address (Dovecot passes the
# address; a host name is refused by memfa). The process running PAM must be able to connect to
# memfa's hook socket (be in the socket's group, e.g. memfa; see examples/memfa.service).
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
# Standard input (the token) is inherited; the answer on standard output is not needed.
"$MEMFA" verify --user="$user" --ip="$ip" --code-stdin >/dev/null
status=$?

case $status in
  0)
    exit 0
    ;;
  1)
    log "denied: $user from $ip"
    ;;
  2)
    log "second factor still needed: $user from $ip"
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
