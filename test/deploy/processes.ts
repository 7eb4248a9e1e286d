// Processes for the deploy tests: a real `relu-serve serve` configured only by RELU_SERVE_*
// variables (as in the images), free ports, binaries on PATH, and cleanup that never leaves
// a child running.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { serverReady } from '../server-process.js';

const cli = fileURLToPath(new URL('../../server/cli/main.js', import.meta.url));
const children: ChildProcess[] = [];

/** Kills every child still running (SIGKILL); for after(). */
export function killChildren(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

export function onPath(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export function track(proc: ChildProcess): ChildProcess {
  children.push(proc);
  return proc;
}

export interface ServerProcess {
  url: string;
  proc: ChildProcess;
  logs: string[];
}

/**
 * Starts the CLI with `env` added to RELU_SERVE_PORT=0 and loopback; resolves once /health
 * is 200. `argv` and `cwd` replace this checkout's `dist/server/cli/main.js serve`.
 */
export async function startCli(env: Record<string, string>, at: { argv?: string[]; cwd?: string } = {}): Promise<ServerProcess> {
  const proc = track(spawn(process.execPath, at.argv ?? [cli, 'serve'], {
    cwd: at.cwd,
    env: { ...process.env, RELU_SERVE_HOST: '127.0.0.1', RELU_SERVE_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  }));
  const { url, logs } = await serverReady(proc);
  return { url, proc, logs };
}

/** Polls fn until it returns a value other than undefined, or throws after ms. */
export async function poll<T>(fn: () => Promise<T | undefined>, ms: number, what: string | (() => string)): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
