// The one catalogue of memfa errors. Each has a stable string code (for scripts and logs), the
// JSON-RPC error code it travels as, and the CLI exit code it becomes (sysexits where one fits).
// man/memfa.1 documents every entry; test/docs.test.ts checks that it does.

export const EXIT = {
  ALLOW: 0,
  DENY: 1,
  CHALLENGE: 2,
  ENROLL: 3,
  USAGE: 64, // EX_USAGE
  DATAERR: 65, // EX_DATAERR
  NOUSER: 67, // EX_NOUSER
  UNAVAILABLE: 69, // EX_UNAVAILABLE: daemon not running / not reachable
  SOFTWARE: 70, // EX_SOFTWARE: internal error
  TEMPFAIL: 75, // EX_TEMPFAIL: try again later
  NOPERM: 77, // EX_NOPERM
  CONFIG: 78, // EX_CONFIG
} as const;

interface ErrorSpec {
  rpc: number;
  exit: number;
  summary: string;
}

export const ERRORS = {
  PARSE_ERROR: { rpc: -32700, exit: EXIT.SOFTWARE, summary: 'the message is not valid JSON' },
  INVALID_REQUEST: { rpc: -32600, exit: EXIT.SOFTWARE, summary: 'the message is not a JSON-RPC 2.0 request' },
  METHOD_NOT_FOUND: { rpc: -32601, exit: EXIT.SOFTWARE, summary: 'no such method' },
  INVALID_PARAMS: { rpc: -32602, exit: EXIT.USAGE, summary: 'a parameter is missing, of the wrong type or out of range' },
  INTERNAL: { rpc: -32603, exit: EXIT.SOFTWARE, summary: 'the daemon failed unexpectedly; see its log' },
  FRAME_TOO_LARGE: { rpc: -32001, exit: EXIT.USAGE, summary: 'a message exceeds the frame size limit' },
  METHOD_NOT_ALLOWED: { rpc: -32002, exit: EXIT.NOPERM, summary: 'the method is not available on this socket' },
  FORBIDDEN: { rpc: -32003, exit: EXIT.NOPERM, summary: 'the caller lacks the right to do this' },
  UNAUTHENTICATED: { rpc: -32004, exit: EXIT.NOPERM, summary: 'the administrator token is missing, unknown or revoked' },
  NOT_FOUND: { rpc: -32005, exit: EXIT.NOUSER, summary: 'no such mailbox, domain or object' },
  CONFLICT: { rpc: -32006, exit: EXIT.DATAERR, summary: 'the request conflicts with the current state' },
  PROVIDER_DISABLED: { rpc: -32007, exit: EXIT.DATAERR, summary: 'the provider is disabled or not permitted here' },
  STORE_CORRUPT: { rpc: -32011, exit: EXIT.DATAERR, summary: 'the store file cannot be read; the daemon refuses to start and leaves it untouched' },
  STREAM_INVALID: { rpc: -32012, exit: EXIT.DATAERR, summary: 'the import stream is cut short, corrupt or of a newer format; nothing was imported' },
  STORE_FAILED: { rpc: -32010, exit: EXIT.TEMPFAIL, summary: 'the store could not be written, or its database not reached in time; nothing was changed' },
  DELIVERY_FAILED: { rpc: -32020, exit: EXIT.TEMPFAIL, summary: 'the code could not be delivered' },
  RATE_LIMITED: { rpc: -32021, exit: EXIT.TEMPFAIL, summary: 'too many sends or attempts; retry later' },
  SHUTTING_DOWN: { rpc: -32030, exit: EXIT.TEMPFAIL, summary: 'the daemon is stopping' },
  TIMEOUT: { rpc: -32031, exit: EXIT.TEMPFAIL, summary: 'the daemon did not answer in time' },
  DAEMON_UNAVAILABLE: { rpc: -32032, exit: EXIT.UNAVAILABLE, summary: 'the daemon is not running or its socket cannot be opened' },
  CONFIG_INVALID: { rpc: -32040, exit: EXIT.CONFIG, summary: 'the configuration is invalid' },
  PROVIDER_UNUSABLE: { rpc: -32041, exit: EXIT.CONFIG, summary: 'neither the provider nor its fallback can give the mailbox its second factor: a gateway, phone number or alternate address is missing' },
  USAGE: { rpc: -32602, exit: EXIT.USAGE, summary: 'the command line is wrong' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERRORS, value);
}

/** A memfa error: typed, with a stable code, safe to show (never carries a secret). */
export class MemfaError extends Error {
  readonly code: ErrorCode;
  /** Extra machine-readable facts, e.g. `{ key: 'smtp.port' }` or `{ retryAfter: 30 }`. */
  readonly data: Record<string, unknown> | undefined;
  /** A one-line hint on how to fix it, for people. */
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: { data?: Record<string, unknown>; hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MemfaError';
    this.code = code;
    this.data = options.data;
    this.hint = options.hint;
  }

  get rpcCode(): number {
    return ERRORS[this.code].rpc;
  }

  get exitCode(): number {
    return ERRORS[this.code].exit;
  }
}

export function invalidParams(message: string, data?: Record<string, unknown>): MemfaError {
  return new MemfaError('INVALID_PARAMS', message, data === undefined ? {} : { data });
}
