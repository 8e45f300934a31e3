// Minimal mail-protocol clients for tests and the benchmark: connect, log in with a plaintext
// password, log out. Each answers what the server said to the login, so a test can assert both
// the outcome and the text a user would see.
import net from 'node:net';

export interface LoginOutcome {
  ok: boolean;
  /** The server's answer to the login command, as sent (one line). */
  reply: string;
}

/** Reads CRLF-terminated lines from a socket, one at a time. */
class LineReader {
  private buffer = '';
  private waiting: ((line: string) => void) | null = null;
  private failed: Error | null = null;
  private fail: ((err: Error) => void) | null = null;

  constructor(private readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buffer += d;
      this.deliver();
    });
    const onEnd = (err?: Error) => {
      this.failed = err ?? new Error('connection closed');
      this.fail?.(this.failed);
    };
    socket.on('error', onEnd);
    socket.on('close', () => onEnd());
  }

  private deliver(): void {
    const nl = this.buffer.indexOf('\n');
    if (nl === -1 || this.waiting === null) return;
    const line = this.buffer.slice(0, nl).replace(/\r$/, '');
    this.buffer = this.buffer.slice(nl + 1);
    const w = this.waiting;
    this.waiting = null;
    this.fail = null;
    w(line);
  }

  next(): Promise<string> {
    return new Promise((resolve, reject) => {
      if (this.buffer.includes('\n')) {
        this.waiting = resolve;
        this.deliver();
        return;
      }
      if (this.failed) return reject(this.failed);
      this.waiting = resolve;
      this.fail = reject;
    });
  }

  /** Lines until one matches. */
  async until(match: (line: string) => boolean): Promise<string> {
    for (;;) {
      const line = await this.next();
      if (match(line)) return line;
    }
  }
}

/** Where a client connects from: another loopback address (127.0.0.2, ...) is another client address. */
export interface ClientOptions {
  from?: string;
}

function connect(port: number, opts: ClientOptions = {}): Promise<{ socket: net.Socket; lines: LineReader }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', ...(opts.from === undefined ? {} : { localAddress: opts.from }) });
    socket.setTimeout(15000, () => socket.destroy(new Error('mail server did not answer in 15 s')));
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve({ socket, lines: new LineReader(socket) });
    });
  });
}

const quote = (s: string) => `"${s.replace(/["\\]/g, (c) => '\\' + c)}"`;
const plain = (user: string, password: string) => Buffer.from(`\0${user}\0${password}`).toString('base64');

export async function imapLogin(port: number, user: string, password: string, opts: ClientOptions = {}): Promise<LoginOutcome> {
  const { socket, lines } = await connect(port, opts);
  try {
    await lines.until((l) => l.startsWith('* OK'));
    socket.write(`a1 LOGIN ${quote(user)} ${quote(password)}\r\n`);
    const reply = await lines.until((l) => l.startsWith('a1 '));
    const ok = reply.startsWith('a1 OK');
    if (ok) {
      socket.write('a2 LOGOUT\r\n');
      await lines.until((l) => l.startsWith('a2 ')).catch(() => undefined);
    }
    return { ok, reply };
  } finally {
    socket.destroy();
  }
}

export async function pop3Login(port: number, user: string, password: string, opts: ClientOptions = {}): Promise<LoginOutcome> {
  const { socket, lines } = await connect(port, opts);
  try {
    await lines.until((l) => l.startsWith('+OK'));
    socket.write(`USER ${user}\r\n`);
    await lines.next();
    socket.write(`PASS ${password}\r\n`);
    const reply = await lines.next();
    const ok = reply.startsWith('+OK');
    if (ok) {
      socket.write('QUIT\r\n');
      await lines.next().catch(() => undefined);
    }
    return { ok, reply };
  } finally {
    socket.destroy();
  }
}

/** ManageSieve (RFC 5804): AUTHENTICATE "PLAIN" with the initial response. */
export async function sieveLogin(port: number, user: string, password: string, opts: ClientOptions = {}): Promise<LoginOutcome> {
  const { socket, lines } = await connect(port, opts);
  try {
    await lines.until((l) => l.startsWith('OK'));
    socket.write(`AUTHENTICATE "PLAIN" "${plain(user, password)}"\r\n`);
    const reply = await lines.until((l) => /^(OK|NO|BYE)/.test(l));
    const ok = reply.startsWith('OK');
    if (ok) socket.write('LOGOUT\r\n');
    return { ok, reply };
  } finally {
    socket.destroy();
  }
}

/** SMTP submission (Dovecot's submission service): EHLO, AUTH PLAIN. */
export async function submissionLogin(port: number, user: string, password: string, opts: ClientOptions = {}): Promise<LoginOutcome> {
  const { socket, lines } = await connect(port, opts);
  try {
    await lines.until((l) => l.startsWith('220 '));
    socket.write('EHLO client.test\r\n');
    await lines.until((l) => l.startsWith('250 '));
    socket.write(`AUTH PLAIN ${plain(user, password)}\r\n`);
    const reply = await lines.until((l) => /^\d{3} /.test(l));
    const ok = reply.startsWith('235');
    socket.write('QUIT\r\n');
    return { ok, reply };
  } finally {
    socket.destroy();
  }
}
