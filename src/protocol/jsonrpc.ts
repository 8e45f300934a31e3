// JSON-RPC 2.0 message shapes and classification of an incoming line.
import { ERRORS, MemfaError, type ErrorCode, isErrorCode } from './errors.js';

export type RpcId = string | number | null;

export interface RpcRequest {
  jsonrpc: '2.0';
  id: RpcId;
  method: string;
  params?: unknown;
}

export interface RpcErrorObject {
  code: number;
  message: string;
  data?: { code: ErrorCode; hint?: string; [key: string]: unknown };
}

export type RpcResponse<R = unknown> =
  | { jsonrpc: '2.0'; id: RpcId; result: R }
  | { jsonrpc: '2.0'; id: RpcId; error: RpcErrorObject };

export type Incoming =
  | { kind: 'request'; request: RpcRequest; notification: boolean }
  | { kind: 'invalid'; id: RpcId; error: MemfaError };

const MAX_DEPTH = 32;

/** True when a value (the root at depth 0) is nested deeper than `limit`. The recursion is bounded by the limit. */
function depthExceeds(value: unknown, limit: number, depth = 0): boolean {
  if (depth > limit) return true;
  if (value === null || typeof value !== 'object') return false;
  const obj = value as Record<string, unknown>;
  for (const key in obj) if (depthExceeds(obj[key], limit, depth + 1)) return true;
  return false;
}

export function classify(line: string): Incoming {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return { kind: 'invalid', id: null, error: new MemfaError('PARSE_ERROR', 'parse error: the message is not valid JSON') };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    // Batches are not part of memfa's contract: one request, one answer.
    return { kind: 'invalid', id: null, error: new MemfaError('INVALID_REQUEST', 'invalid request: expected one JSON-RPC 2.0 request object') };
  }
  const msg = parsed as Record<string, unknown>;
  const rawId = msg['id'];
  const id: RpcId = typeof rawId === 'string' || typeof rawId === 'number' ? rawId : null;
  if (typeof rawId === 'string' && rawId.length > 128) {
    return { kind: 'invalid', id: null, error: new MemfaError('INVALID_REQUEST', 'invalid request: id longer than 128 characters') };
  }
  if (msg['jsonrpc'] !== '2.0' || typeof msg['method'] !== 'string' || (rawId !== undefined && rawId !== null && id === null)) {
    return { kind: 'invalid', id, error: new MemfaError('INVALID_REQUEST', 'invalid request: need jsonrpc "2.0", a string method and a string or number id') };
  }
  const params = msg['params'];
  if (params !== undefined && (params === null || typeof params !== 'object' || Array.isArray(params))) {
    return { kind: 'invalid', id, error: new MemfaError('INVALID_PARAMS', 'invalid params: params must be an object of named parameters') };
  }
  if (depthExceeds(params, MAX_DEPTH)) {
    return { kind: 'invalid', id, error: new MemfaError('INVALID_PARAMS', `invalid params: nested deeper than ${MAX_DEPTH} levels`) };
  }
  return {
    kind: 'request',
    request: { jsonrpc: '2.0', id, method: msg['method'] as string, params },
    notification: rawId === undefined,
  };
}

export function errorObject(err: MemfaError): RpcErrorObject {
  const data: RpcErrorObject['data'] = { code: err.code, ...(err.data ?? {}) };
  if (err.hint !== undefined) data.hint = err.hint;
  return { code: err.rpcCode, message: err.message, data };
}

/** Rebuilds a typed error from a response, on the client side. */
export function errorFromObject(obj: RpcErrorObject): MemfaError {
  const { code, hint, ...rest } = obj.data ?? ({} as Partial<NonNullable<RpcErrorObject['data']>>);
  let errorCode: ErrorCode = 'INTERNAL';
  if (isErrorCode(code)) errorCode = code;
  else {
    const byRpc = (Object.keys(ERRORS) as ErrorCode[]).find((k) => ERRORS[k].rpc === obj.code);
    if (byRpc !== undefined) errorCode = byRpc;
  }
  const options: { data?: Record<string, unknown>; hint?: string } = { data: rest };
  if (typeof hint === 'string') options.hint = hint;
  return new MemfaError(errorCode, String(obj.message), options);
}
