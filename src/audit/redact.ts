// The last guard against secrets in the audit log. Callers should never pass a code, secret or
// token in the first place; this drops any field whose name suggests one, at any depth, so a
// careless `details: { ...request }` cannot leak. It errs on the side of dropping: a harmless key
// such as 'countryCode' or 'totpEnabled' is dropped too; name such fields differently.

const SECRET_KEY = /code|secret|token|pass|otp|credential|api[-_]?key|private[-_]?key/i;
const MAX_DEPTH = 8;

export function isSecretKey(name: string): boolean {
  return SECRET_KEY.test(name);
}

function clean(value: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value !== 'object') return undefined; // functions, symbols, undefined
  // Raw bytes in an audit record are most likely key material; there is no safe way to show them.
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return undefined;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (seen.has(value)) return '[circular]';
  if (depth >= MAX_DEPTH) return '[too deep]';
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((item) => clean(item, depth + 1, seen) ?? null);
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      if (isSecretKey(key)) continue;
      const cleaned = clean(item, depth + 1, seen);
      if (cleaned !== undefined) out[key] = cleaned;
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

/**
 * A deep copy of `value`, JSON-safe, without any property whose name looks like a secret
 * (code, secret, token, pass[word], otp, credential, api key, private key; case-insensitive) and
 * without raw byte buffers.
 */
export function redact(value: unknown): unknown {
  return clean(value, 0, new WeakSet());
}
