// Baseline for the daemon's request rate: a minimal newline-delimited JSON-RPC server on a Unix
// socket. Each line is parsed and answered with {"jsonrpc":"2.0","id":…,"result":params}, so the
// baseline pays for framing, JSON parse and JSON stringify, and nothing else.
// Usage: node dist/bench/echo-server.js SOCKET; prints "ready" on stdout once listening.
import net from 'node:net';
import { unlinkSync } from 'node:fs';

const socketPath = process.argv[2];
if (socketPath === undefined) {
  process.stderr.write('usage: echo-server SOCKET\n');
  process.exit(64);
}

const server = net.createServer((socket) => {
  let pending = '';
  socket.setEncoding('utf8');
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: string) => {
    pending += chunk;
    let start = 0;
    let nl: number;
    let out = '';
    while ((nl = pending.indexOf('\n', start)) !== -1) {
      const line = pending.slice(start, nl);
      start = nl + 1;
      try {
        const msg = JSON.parse(line) as { id?: unknown; params?: unknown };
        out += JSON.stringify({ jsonrpc: '2.0', id: msg.id ?? null, result: msg.params ?? null }) + '\n';
      } catch {
        out += JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'parse error' } }) + '\n';
      }
    }
    pending = pending.slice(start);
    if (out !== '') socket.write(out);
  });
});

server.maxConnections = 1024;
server.listen(socketPath, () => process.stdout.write('ready\n'));
const stop = () => {
  server.close();
  try {
    unlinkSync(socketPath);
  } catch {
    // already gone
  }
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
