// A real SMTP server on 127.0.0.1 that keeps what it receives, for delivery tests.

import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  from: string;
  to: string[];
  raw: string;
  headers: Record<string, string>;
  /** Decoded text/plain and text/html parts ('' when absent). */
  text: string;
  html: string;
}

export interface SmtpSinkOptions {
  /** When set, AUTH is required and only these credentials pass. */
  auth?: { user: string; pass: string };
  /**
   * 'starttls' offers STARTTLS, 'implicit' speaks TLS from the first byte; both with smtp-server's
   * built-in self-signed certificate.
   */
  tls?: 'none' | 'starttls' | 'implicit';
  /** Reply to RCPT TO with this error instead of accepting. */
  rejectRcpt?: { code: number; message: string };
  /** Listen on this port (default: any free one), e.g. one a daemon found closed before. */
  port?: number;
}

export interface SmtpSink {
  port: number;
  messages: ReceivedMail[];
  /** Credentials offered by clients, for asserting what was (not) tried. */
  authAttempts: Array<{ user: string | undefined; method: string }>;
  close(): Promise<void>;
  waitForMessages(count: number, timeoutMs?: number): Promise<void>;
}

export async function startSmtpSink(options: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const messages: ReceivedMail[] = [];
  const authAttempts: SmtpSink['authAttempts'] = [];
  const server = new SMTPServer({
    logger: false,
    secure: options.tls === 'implicit',
    authOptional: options.auth === undefined,
    allowInsecureAuth: true,
    disabledCommands: options.tls === 'starttls' || options.tls === 'implicit' ? [] : ['STARTTLS'],
    closeTimeout: 100,
    onAuth(auth, _session, callback) {
      authAttempts.push({ user: auth.username, method: auth.method });
      if (options.auth !== undefined && auth.username === options.auth.user && auth.password === options.auth.pass) {
        callback(null, { user: auth.username });
        return;
      }
      callback(Object.assign(new Error('Authentication credentials invalid'), { responseCode: 535 }));
    },
    onRcptTo(_address, _session, callback) {
      if (options.rejectRcpt !== undefined) {
        callback(Object.assign(new Error(options.rejectRcpt.message), { responseCode: options.rejectRcpt.code }));
        return;
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const from = session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address;
        messages.push({ from, to: session.envelope.rcptTo.map((r) => r.address), raw, ...parseMime(raw) });
        callback();
      });
    },
  });
  server.on('error', () => {
    // Client disconnects mid-session surface here; the tests look at what arrived instead.
  });
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;

  return {
    port,
    messages,
    authAttempts,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    waitForMessages: (count, timeoutMs = 2000) => waitUntil(() => messages.length >= count, timeoutMs, `${count} message(s)`),
  };
}

export async function waitUntil(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

// Just enough MIME for the messages nodemailer builds: headers, one level of multipart, and the
// 7bit / quoted-printable / base64 transfer encodings.
function parseMime(raw: string): { headers: Record<string, string>; text: string; html: string } {
  const { headers, body } = splitEntity(raw);
  const result = { headers, text: '', html: '' };
  const collect = (entityHeaders: Record<string, string>, entityBody: string): void => {
    const type = (entityHeaders['content-type'] ?? 'text/plain').toLowerCase();
    const boundary = /boundary="?([^";]+)"?/i.exec(entityHeaders['content-type'] ?? '')?.[1];
    if (type.startsWith('multipart/') && boundary !== undefined) {
      const parts = entityBody.split(`--${boundary}`).slice(1);
      for (const part of parts) {
        if (part.startsWith('--')) break;
        const inner = splitEntity(part.replace(/^\r?\n/, ''));
        collect(inner.headers, inner.body);
      }
      return;
    }
    const decoded = decodeBody(entityBody, entityHeaders['content-transfer-encoding'] ?? '7bit');
    if (type.startsWith('text/plain')) result.text = decoded;
    else if (type.startsWith('text/html')) result.html = decoded;
  };
  collect(headers, body);
  return result;
}

function splitEntity(text: string): { headers: Record<string, string>; body: string } {
  const end = text.indexOf('\r\n\r\n');
  const head = end < 0 ? text : text.slice(0, end);
  const body = end < 0 ? '' : text.slice(end + 4);
  const headers: Record<string, string> = {};
  for (const line of head.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { headers, body };
}

function decodeBody(body: string, encoding: string): string {
  switch (encoding.toLowerCase()) {
    case 'base64':
      return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
    case 'quoted-printable': {
      const bytes = body
        .replace(/=\r?\n/g, '')
        .replace(/=([0-9A-F]{2})/gi, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
      return Buffer.from(bytes, 'latin1').toString('utf8');
    }
    default:
      return body;
  }
}
