// Writing and reading the export stream (format.ts): the writer numbers nothing and checks
// nothing, it writes what the exporter gives it and hashes every line; the reader takes the
// stream a line at a time, each line bounded, checks the header, the order of the kinds and keys,
// every record's shape (check.ts), the counts and the checksum, and names the line and the field
// of the first problem. Nothing read is final until the reader has checked the trailer: an
// importer commits only after the iteration ends without an error.
import { createHash, type Hash } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import { parseEntry } from '../../audit/entry.js';
import type { DomainRecord, LevelSettings, MailboxRecord } from '../../core/model.js';
import { MemfaError } from '../../protocol/errors.js';
import type { AuditStreamName } from '../../protocol/results.js';
import { checkDomain, checkMailbox, checkMetaKey, checkMetaValue, checkSettings, FieldError } from './check.js';
import { AUDIT_STREAMS, BODY_KINDS, emptyCounts, FORMAT, FORMAT_VERSION, MAX_LINE_BYTES, sameCounts, stableJson, type Backend, type BodyKind, type Header, type StateCounts } from './format.js';

/** Resolves once `out` has taken `text` (waits for it to drain when its buffer is full). */
function write(out: Writable, text: string): Promise<void> {
  if (out.write(text)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      out.off('drain', done);
      out.off('error', done);
      if (err === undefined) resolve();
      else reject(err);
    };
    out.on('drain', done);
    out.on('error', done);
  });
}

export class StreamWriter {
  private readonly hash: Hash = createHash('sha256');
  private readonly counts = emptyCounts();

  constructor(private readonly out: Writable) {}

  private line(text: string): Promise<void> {
    const line = text + '\n';
    this.hash.update(line, 'utf8');
    return write(this.out, line);
  }

  header(source: Backend, memfa: string, counts: StateCounts, now: Date): Promise<void> {
    // Keys in this order, not sorted: `head -1` shows what the stream is first.
    const h: Header = { kind: 'header', format: FORMAT, version: FORMAT_VERSION, memfa, source, createdAt: now.toISOString(), counts };
    return this.line(JSON.stringify({ ...h, counts: JSON.parse(stableJson(counts)) as StateCounts }));
  }

  global(settings: LevelSettings): Promise<void> {
    return this.line(`{"kind":"global","settings":${stableJson(settings)}}`);
  }

  domain(record: DomainRecord): Promise<void> {
    this.counts.domains++;
    return this.line(`{"kind":"domain","record":${stableJson(record)}}`);
  }

  meta(key: string, value: unknown): Promise<void> {
    this.counts.meta++;
    return this.line(`{"kind":"meta","key":${JSON.stringify(key)},"value":${stableJson(value)}}`);
  }

  mailbox(record: MailboxRecord): Promise<void> {
    this.counts.mailboxes++;
    return this.line(`{"kind":"mailbox","record":${stableJson(record)}}`);
  }

  /** `line`: the stored line's text, newline excluded, exactly as its chain hashes it. */
  audit(stream: AuditStreamName, line: string): Promise<void> {
    this.counts.audit[stream]++;
    return this.line(`{"kind":"audit","stream":${JSON.stringify(stream)},"line":${JSON.stringify(line)}}`);
  }

  /** The trailer: what was written and the checksum of every line before it. */
  async end(): Promise<StateCounts> {
    await write(this.out, `${stableJson({ kind: 'end', counts: this.counts, sha256: this.hash.digest('hex') })}\n`);
    return this.counts;
  }
}

// ---------------------------------------------------------------------------------------------
// Reading

export type Item =
  | { kind: 'global'; settings: LevelSettings }
  | { kind: 'domain'; record: DomainRecord }
  | { kind: 'meta'; key: string; value: unknown }
  | { kind: 'mailbox'; record: MailboxRecord }
  | { kind: 'audit'; stream: AuditStreamName; line: string; seq: number };

export function invalid(line: number | null, problem: string, field?: string): MemfaError {
  return new MemfaError('STREAM_INVALID', line === null ? problem : `line ${line}: ${field === undefined ? '' : `${field}: `}${problem}`, {
    data: { ...(line === null ? {} : { line }), ...(field === undefined ? {} : { field }) },
    hint: 'import a stream written whole by memfa store export (a newer memfa writes newer versions)',
  });
}

const NEWLINE = 0x0a;

/** The lines of `input`, numbered from 1, each at most MAX_LINE_BYTES; the last must end with a newline. */
export async function* boundedLines(input: Readable, max = MAX_LINE_BYTES): AsyncGenerator<{ no: number; bytes: Buffer }> {
  let pieces: Buffer[] = [];
  let held = 0;
  let no = 0;
  for await (const chunk of input as AsyncIterable<Buffer | string>) {
    let buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    for (;;) {
      const nl = buf.indexOf(NEWLINE);
      if (nl === -1) {
        held += buf.length;
        if (held > max) throw invalid(no + 1, `longer than ${max} bytes`);
        if (buf.length > 0) pieces.push(buf);
        break;
      }
      if (held + nl > max) throw invalid(no + 1, `longer than ${max} bytes`);
      pieces.push(buf.subarray(0, nl));
      const bytes = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
      pieces = [];
      held = 0;
      yield { no: ++no, bytes };
      buf = buf.subarray(nl + 1);
    }
  }
  if (held > 0) throw invalid(no + 1, 'the stream ends in the middle of a line (cut short)');
}

function parseLine(no: number, bytes: Buffer): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw invalid(no, `not valid JSON (${(err as Error).message})`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw invalid(no, 'not a JSON object');
  return v as Record<string, unknown>;
}

function countsOf(no: number, v: unknown, field: string): StateCounts {
  const ok = (n: unknown) => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  const c = v as Partial<StateCounts> | null;
  if (c === null || typeof c !== 'object' || !ok(c.domains) || !ok(c.meta) || !ok(c.mailboxes) || c.audit === null || typeof c.audit !== 'object' || !ok(c.audit.security) || !ok(c.audit.logins)) {
    throw invalid(no, 'not the counts of a stream ({domains, meta, mailboxes, audit: {security, logins}})', field);
  }
  return { domains: c.domains!, meta: c.meta!, mailboxes: c.mailboxes!, audit: { security: c.audit.security!, logins: c.audit.logins! } };
}

/** Checks the first line; the header it holds. */
export function readHeader(no: number, bytes: Buffer): Header {
  const h = parseLine(no, bytes);
  if (h['kind'] !== 'header' || h['format'] !== FORMAT) throw invalid(no, `not a memfa export stream (the first line must be its header, format "${FORMAT}")`, 'format');
  const version = h['version'];
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) throw invalid(no, 'not a positive integer', 'version');
  if (version > FORMAT_VERSION) {
    throw invalid(no, `the stream is of format version ${version}, written by memfa ${String(h['memfa'])}; this memfa reads versions up to ${FORMAT_VERSION}: upgrade memfa first`, 'version');
  }
  if (h['source'] !== 'file' && h['source'] !== 'postgres') throw invalid(no, 'not "file" or "postgres"', 'source');
  return { kind: 'header', format: FORMAT, version, memfa: String(h['memfa']), source: h['source'], createdAt: String(h['createdAt']), counts: countsOf(no, h['counts'], 'counts') };
}

/** Code point order of UTF-8 bytes: PostgreSQL's "C" collation, and the file store's export order. */
export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

const AUDIT_LINE_FIELDS = new Set(['kind', 'stream', 'line']);

/** What the lines read so far allow of the next: the kind reached, the last key, each stream's last seq; and the counts. */
class BodyOrder {
  readonly counts = emptyCounts();
  /** The index in BODY_KINDS of the kind read last; -1 before the global line. */
  stage = -1;
  private lastKey: string | null = null;
  private auditStream = -1;
  private lastSeq = 0;

  /** The item of body line `no`, or STREAM_INVALID naming the line and the field. */
  item(no: number, v: Record<string, unknown>): Item {
    const kind = v['kind'];
    const at = BODY_KINDS.indexOf(kind as BodyKind);
    if (at === -1) throw invalid(no, `not a kind of line (${BODY_KINDS.join(', ')}, end)`, 'kind');
    if (at < this.stage || (at === 0 && this.stage === 0)) throw invalid(no, `a "${String(kind)}" line after the "${BODY_KINDS[this.stage]}" lines: out of order`, 'kind');
    if (at !== 0 && this.stage < 0) throw invalid(no, 'the first line after the header must be the "global" line', 'kind');
    if (at !== this.stage) this.lastKey = null;
    this.stage = at;
    try {
      return this.checked(no, v, BODY_KINDS[at]!);
    } catch (err) {
      if (err instanceof FieldError) throw invalid(no, err.problem, err.field);
      throw err;
    }
  }

  /** Keys rise within a kind: a key given twice is refused without remembering the keys. */
  private ascending(no: number, key: string, field: string): void {
    if (this.lastKey !== null && byteOrder(key, this.lastKey) <= 0) throw invalid(no, `"${key}" does not come after "${this.lastKey}": the stream is out of order or holds it twice`, field);
    this.lastKey = key;
  }

  private checked(no: number, v: Record<string, unknown>, kind: BodyKind): Item {
    switch (kind) {
      case 'global':
        return { kind, settings: checkSettings(v['settings']) };
      case 'domain': {
        const record = checkDomain(v['record']);
        this.ascending(no, record.domain, 'record.domain');
        this.counts.domains++;
        return { kind, record };
      }
      case 'meta': {
        const key = checkMetaKey(v['key']);
        this.ascending(no, key, 'key');
        this.counts.meta++;
        return { kind, key, value: checkMetaValue(v['value']) };
      }
      case 'mailbox': {
        const record = checkMailbox(v['record']);
        this.ascending(no, record.address, 'record.address');
        this.counts.mailboxes++;
        return { kind, record };
      }
      case 'audit':
        return this.audit(no, v);
    }
  }

  private audit(no: number, v: Record<string, unknown>): Item {
    for (const k of Object.keys(v)) if (!AUDIT_LINE_FIELDS.has(k)) throw invalid(no, 'not a field of an audit line', k);
    const at = AUDIT_STREAMS.indexOf(v['stream'] as AuditStreamName);
    if (at === -1) throw invalid(no, `not an audit stream (${AUDIT_STREAMS.join(', ')})`, 'stream');
    if (at < this.auditStream) throw invalid(no, `a "${AUDIT_STREAMS[at]}" line after the "${AUDIT_STREAMS[this.auditStream]}" lines: out of order`, 'stream');
    if (at !== this.auditStream) this.lastSeq = 0;
    this.auditStream = at;
    const stream = AUDIT_STREAMS[at]!;
    const line = v['line'];
    if (typeof line !== 'string' || line.includes('\n')) throw invalid(no, 'not one line of text', 'line');
    const entry = parseEntry(Buffer.from(line, 'utf8'));
    if (typeof entry === 'string') throw invalid(no, `not an audit entry (${entry})`, 'line');
    // Rising by one: a chain goes on line by line (its first line may be any: rotation drops the oldest).
    if (this.lastSeq !== 0 && entry.seq !== this.lastSeq + 1) throw invalid(no, `seq ${entry.seq} does not follow ${this.lastSeq}: lines missing, out of order or twice`, 'line');
    this.lastSeq = entry.seq;
    this.counts.audit[stream]++;
    return { kind: 'audit', stream, line, seq: entry.seq };
  }
}

/**
 * Reads a whole stream: `header` is called with the header, then every body line comes out as an
 * item, in order; the iteration ends normally only when the trailer matched.
 */
export async function* readStream(input: Readable, header: (h: Header) => void | Promise<void>): AsyncGenerator<Item> {
  const lines = boundedLines(input);
  const first = await lines.next();
  if (first.done === true) throw invalid(null, 'the stream is empty');
  const h = readHeader(first.value.no, first.value.bytes);
  await header(h);
  const hash = createHash('sha256');
  hash.update(first.value.bytes).update('\n');
  const order = new BodyOrder();
  for await (const { no, bytes } of lines) {
    const v = parseLine(no, bytes);
    if (v['kind'] !== 'end') {
      hash.update(bytes).update('\n');
      yield order.item(no, v);
      continue;
    }
    if (order.stage < 0) throw invalid(no, 'the stream has no "global" line', 'kind');
    const claimed = countsOf(no, v['counts'], 'counts');
    if (!sameCounts(claimed, order.counts)) throw invalid(no, "the trailer's counts are not the lines read: lines are missing or were added", 'counts');
    if (!sameCounts(h.counts, order.counts)) throw invalid(no, "the header's counts are not the lines read", 'counts');
    if (v['sha256'] !== hash.digest('hex')) throw invalid(no, 'the checksum does not match the lines before it: the stream was changed', 'sha256');
    const rest = await lines.next();
    if (rest.done !== true) throw invalid(rest.value.no, 'a line after the trailer');
    return;
  }
  throw invalid(null, 'the stream ends without its trailer (cut short)');
}
