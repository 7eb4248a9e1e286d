// A real `relu-serve serve` child process for tests that must survive what would kill a
// server (a signal shows up as the child's exit, not as this test process dying).
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../../server/cli/main.js', import.meta.url));

export interface ServeProcess {
  proc: ChildProcess;
  url: string;
  logs: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(): void;
}

export async function startServe(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ServeProcess> {
  const proc = spawn(process.execPath, [cli, 'serve', '--port', '0', '--threads', '1', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const logs: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.on('exit', (code, signal) => r({ code, signal })));
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
    proc.on('exit', (code, signal) => reject(new Error(`server exited early (${code ?? signal}): ${logs.join('\n')}`)));
  });
  for (let i = 0; ; i++) {
    const status = await fetch(`${url}/health`).then(async (r) => (await r.arrayBuffer(), r.status), () => 0);
    if (status === 200) break;
    if (i > 400) throw new Error(`server never became healthy: ${logs.join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    proc,
    url,
    logs,
    exited,
    kill: () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    },
  };
}
