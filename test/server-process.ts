// The shared start of a test's `relu-serve serve` child process: collect its log lines,
// read the URL it listens on, then wait until /health answers 200. Refuses with the
// log if the process exits first or never becomes healthy.
import type { ChildProcess } from 'node:child_process';

export async function serverReady(proc: ChildProcess, maxPolls = 400): Promise<{ url: string; logs: string[] }> {
  const logs: string[] = [];
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        logs.push(line);
        const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(line);
        if (m) resolve(m[1]);
      }
    });
    proc.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
    proc.on('exit', (code, signal) => reject(new Error(`relu-serve exited early (${code ?? signal}): ${logs.join('\n')}`)));
  });
  for (let i = 0; ; i++) {
    const status = await fetch(`${url}/health`).then(async (r) => (await r.arrayBuffer(), r.status), () => 0);
    if (status === 200) break;
    if (i > maxPolls) throw new Error(`relu-serve never became healthy: ${logs.join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url, logs };
}
