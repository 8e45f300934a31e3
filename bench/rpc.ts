// One request to a daemon's socket on a fresh connection: the benchmark's sanity checks.
import net from 'node:net';

/** One request on a fresh connection; the parsed answer. */
export function rpcOnce(socketPath: string, line: string): Promise<{ result?: unknown; error?: unknown }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    let buf = '';
    s.setEncoding('utf8');
    s.on('connect', () => s.write(line + '\n'));
    s.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl === -1) return;
      s.destroy();
      resolve(JSON.parse(buf.slice(0, nl)) as { result?: unknown });
    });
    s.on('error', reject);
  });
}

export async function expectVerify(socketPath: string, params: Record<string, string>, reason: string): Promise<void> {
  const answer = await rpcOnce(socketPath, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'verify', params }));
  const r = answer.result as { result?: string; reason?: string } | undefined;
  if (r?.result !== 'allow' || r.reason !== reason) throw new Error(`sanity check failed: verify ${JSON.stringify(params)} answered ${JSON.stringify(answer)} (wanted allow/${reason})`);
}
