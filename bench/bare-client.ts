// Baseline for `memfa verify`: the least a Node program can do to ask the daemon one question.
// Connects to the socket, sends one request line, reads one answer line, prints it and exits.
// Spawned exactly like the CLI (`node dist/bench/bare-client.js SOCKET LINE`).
import net from 'node:net';

const [socketPath, line] = process.argv.slice(2);
if (socketPath === undefined || line === undefined) {
  process.stderr.write('usage: bare-client SOCKET REQUEST-LINE\n');
  process.exit(64);
}
const socket = net.connect(socketPath);
let buffered = '';
socket.setEncoding('utf8');
socket.on('connect', () => socket.write(line + '\n'));
socket.on('data', (chunk: string) => {
  buffered += chunk;
  const nl = buffered.indexOf('\n');
  if (nl === -1) return;
  process.stdout.write(buffered.slice(0, nl + 1));
  socket.destroy();
});
socket.on('error', (err) => {
  process.stderr.write(`bare-client: ${err.message}\n`);
  process.exitCode = 69;
});
