<?php
// memfa.php: a small client of the memfa daemon for PHP webmail back ends (Roundcube,
// SnappyMail, ...) and other PHP servers. PHP 8.1 or later, no extensions beyond the core.
//
//   $memfa = new Memfa\Client('/run/memfa/hook.sock', '/run/memfa/self.sock');
//
//   // After the webmail has checked the user's password:
//   $step = $memfa->login($user, $clientIp);                 // or with the code the user typed
//   switch ($step->next) {
//     case Memfa\LoginStep::DONE:        /* logged in */ break;
//     case Memfa\LoginStep::ASK_CODE:    /* ask for a code ($step->answer['destination']) */ break;
//     case Memfa\LoginStep::ENROLL:      /* show $step->answer['otpauthUri'] as a QR code */ break;
//     case Memfa\LoginStep::REFUSED:     /* refuse; $step->message says why */ break;
//     case Memfa\LoginStep::RETRY_LATER: /* temporary failure: refuse for now */ break;
//   }
//
// The login sequence is memfa(1), SOCKETS AND PROTOCOL, "The webmail login sequence". Every
// failure to get an answer is RETRY_LATER or an exception, never a pass. The hook socket serves
// verify and login.check; the self socket (give its group to the webmail only) the self-service
// methods. Codes and passwords are sent to the daemon and nowhere else: keep them out of logs.

declare(strict_types=1);

namespace Memfa;

/** An error answer of the daemon, with its stable code (memfa(1), ERRORS) and data. */
final class MemfaException extends \RuntimeException
{
    /** The codes that mean "try again later", as exit status 69 and 75 do. */
    private const TEMPORARY = ['DAEMON_UNAVAILABLE', 'DELIVERY_FAILED', 'RATE_LIMITED', 'SHUTTING_DOWN', 'TIMEOUT', 'STORE_FAILED'];

    public function __construct(public readonly string $memfaCode, string $message, public readonly array $data = [])
    {
        parent::__construct($message);
    }

    public function isTemporary(): bool
    {
        return in_array($this->memfaCode, self::TEMPORARY, true);
    }
}

/** What the webmail does next in a login. */
final class LoginStep
{
    public const DONE = 'done';
    public const ASK_CODE = 'ask-code';
    public const ENROLL = 'enroll';
    public const REFUSED = 'refused';
    public const RETRY_LATER = 'retry-later';

    /** @param array<string,mixed> $answer verify's answer, or for an error ['error' => code, ...data] */
    public function __construct(public readonly string $next, public readonly array $answer, public readonly ?string $message = null)
    {
    }
}

final class Client
{
    /** Longest answer line read (the daemon's frames are at most limits.maxFrameBytes). */
    private const MAX_LINE = 1048576;
    private int $id = 0;

    public function __construct(
        private readonly string $hookSocket = '/run/memfa/hook.sock',
        private readonly ?string $selfSocket = '/run/memfa/self.sock',
        private readonly float $timeoutSeconds = 5.0,
    ) {
    }

    /**
     * One JSON-RPC request on a socket: the result, or a MemfaException (DAEMON_UNAVAILABLE when
     * the socket cannot be reached, TIMEOUT when no answer comes in time).
     * @param array<string,mixed> $params
     * @return array<string,mixed>
     */
    public function call(string $socket, string $method, array $params): array
    {
        $conn = @stream_socket_client('unix://' . $socket, $errno, $errstr, $this->timeoutSeconds);
        if ($conn === false) {
            throw new MemfaException('DAEMON_UNAVAILABLE', "cannot reach the memfa daemon at $socket: $errstr");
        }
        try {
            stream_set_timeout($conn, (int) $this->timeoutSeconds, (int) (fmod($this->timeoutSeconds, 1.0) * 1e6));
            $request = json_encode(['jsonrpc' => '2.0', 'id' => ++$this->id, 'method' => $method, 'params' => (object) $params], JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES);
            if (@fwrite($conn, $request . "\n") === false) {
                throw new MemfaException('DAEMON_UNAVAILABLE', "cannot send to the memfa daemon at $socket");
            }
            $line = fgets($conn, self::MAX_LINE);
            if ($line === false) {
                $meta = stream_get_meta_data($conn);
                throw new MemfaException($meta['timed_out'] ? 'TIMEOUT' : 'DAEMON_UNAVAILABLE', "no answer from the memfa daemon at $socket");
            }
        } finally {
            fclose($conn);
        }
        $answer = json_decode($line, true);
        if (!is_array($answer)) {
            throw new MemfaException('INTERNAL', 'the memfa daemon answered something that is not JSON');
        }
        if (isset($answer['error']) && is_array($answer['error'])) {
            $data = is_array($answer['error']['data'] ?? null) ? $answer['error']['data'] : [];
            throw new MemfaException((string) ($data['code'] ?? 'INTERNAL'), (string) ($answer['error']['message'] ?? 'error'), $data);
        }
        if (!isset($answer['result']) || !is_array($answer['result'])) {
            throw new MemfaException('INTERNAL', 'the memfa daemon answered without a result');
        }
        return $answer['result'];
    }

    private function self(string $method, array $params): array
    {
        if ($this->selfSocket === null) {
            throw new \LogicException('no self socket configured: self-service is not available to this client');
        }
        return $this->call($this->selfSocket, $method, $params);
    }

    // ------------------------------------------------------------------------------------------
    // Logins (hook socket)

    /** verify: whether the login needs a second factor, or (with $code) check it. */
    public function verify(string $user, string $ip, ?string $code = null): array
    {
        $params = ['user' => $user, 'ip' => $ip];
        if ($code !== null) {
            $params['code'] = $code;
        }
        return $this->call($this->hookSocket, 'verify', $params);
    }

    /**
     * One step of the webmail login, once the password is checked: call it without a code, then
     * again with the code (or recovery code) the user typed after ASK_CODE or ENROLL.
     */
    public function login(string $user, string $ip, ?string $code = null): LoginStep
    {
        try {
            $a = $this->verify($user, $ip, $code);
        } catch (MemfaException $e) {
            $answer = ['error' => $e->memfaCode] + $e->data;
            if ($e->isTemporary()) {
                $wait = isset($e->data['retryAfter']) ? ' Try again in ' . (int) $e->data['retryAfter'] . ' seconds.' : ' Try again later.';
                return new LoginStep(LoginStep::RETRY_LATER, $answer, 'The second factor cannot be checked just now.' . $wait);
            }
            return new LoginStep(LoginStep::REFUSED, $answer, 'The login cannot be completed.');
        }
        switch ($a['result']) {
            case 'allow':
                return new LoginStep(LoginStep::DONE, $a);
            case 'challenge':
                $where = isset($a['destination']) ? ' We sent it to ' . $a['destination'] . '.' : ' Open your authenticator app.';
                return new LoginStep(LoginStep::ASK_CODE, $a, 'Enter your verification code.' . $where);
            case 'enroll':
                return new LoginStep(LoginStep::ENROLL, $a, 'Scan the code with an authenticator app, then enter the code it shows.');
            default:
                return new LoginStep(LoginStep::REFUSED, $a, self::refusal($a));
        }
    }

    private static function refusal(array $a): string
    {
        switch ($a['reason'] ?? '') {
            case 'locked':
                return isset($a['retryAfter']) ? 'Too many failed attempts. Try again in ' . (int) $a['retryAfter'] . ' seconds.' : 'This account is locked. Ask your administrator.';
            case 'code-invalid':
            case 'code-reused':
            case 'code-expired':
            case 'no-open-code':
                return 'The code is not valid. Try again with a new code.';
            case 'country-blocked':
                return 'Logins from your country are not allowed.';
            default:
                return 'The login is refused.';
        }
    }

    /** login.check, for a PHP server whose logins cannot answer a challenge (e.g. CalDAV/CardDAV: protocol dav). */
    public function loginCheck(string $user, string $ip, string $protocol, string $password): array
    {
        return $this->call($this->hookSocket, 'login.check', ['user' => $user, 'ip' => $ip, 'protocol' => $protocol, 'password' => $password]);
    }

    // ------------------------------------------------------------------------------------------
    // Self-service (self socket), for the user the webmail has logged in

    public function selfShow(string $user): array
    {
        return $this->self('self.show', ['user' => $user]);
    }

    /** Sends a code to the user's sms or email factor, to be given back as $currentCode. */
    public function sendCode(string $user, ?string $ip = null): array
    {
        return $this->self('self.code.send', $ip === null ? ['user' => $user] : ['user' => $user, 'ip' => $ip]);
    }

    /**
     * A new app password for a mail client, shown to the user once ($result['password']).
     * @param list<string> $protocols imap, pop3, smtp, sieve, dav, or ['all']
     * @param list<string> $networks CIDR networks it may be used from; empty: any
     * @param string|null $expires '90d', '12h', an ISO 8601 date, or null for never
     */
    public function addAppPassword(string $user, string $name, string $currentCode, array $protocols = ['all'], array $networks = [], ?string $expires = null): array
    {
        $params = ['user' => $user, 'name' => $name, 'protocols' => $protocols, 'currentCode' => $currentCode];
        if ($networks !== []) {
            $params['networks'] = $networks;
        }
        if ($expires !== null) {
            $params['expires'] = $expires;
        }
        return $this->self('self.app-password.add', $params);
    }

    public function listAppPasswords(string $user): array
    {
        return $this->self('self.app-password.list', ['user' => $user])['appPasswords'];
    }

    /** Revokes one app password by its id or name; null revokes all of them. */
    public function revokeAppPassword(string $user, ?string $idOrName): array
    {
        return $this->self('self.app-password.revoke', $idOrName === null ? ['user' => $user, 'all' => true] : ['user' => $user, 'idOrName' => $idOrName]);
    }

    /** Ten new recovery codes (the old ones stop working), shown to the user once. */
    public function generateRecoveryCodes(string $user, string $currentCode): array
    {
        return $this->self('self.recovery.generate', ['user' => $user, 'currentCode' => $currentCode])['codes'];
    }
}
