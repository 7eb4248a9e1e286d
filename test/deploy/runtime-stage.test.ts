// The next best thing to building the images: the files each Dockerfile's runtime stage
// copies, put together in a temporary /app (this checkout's build standing in for the build
// stage's), serve with the stage's CMD and ENV and nothing else, and the stage's HEALTHCHECK
// command passes against it. Catches a runtime import of something the stage leaves out.
// node_modules is linked, not copied, so it holds the dev dependencies too; the stage's own
// `npm ci --omit=dev` is not exercised here.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execForm, parseCopy, parseDockerfile, parseEnv, workdir } from './dockerfile.js';
import { killChildren, startCli } from './processes.js';
import { readRepo, repoPath } from './repo.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'relu-serve-image-'));
after(() => {
  killChildren();
  rmSync(tmp, { recursive: true, force: true });
});

// The CUDA image's runtime stage has the same files, CMD, ENV and HEALTHCHECK (dockerfiles.test.ts).
for (const file of ['docker/cpu.Dockerfile']) {
  test(`${file}: the runtime stage's files serve, and its health check passes`, { timeout: 60_000 }, async () => {
    const stages = parseDockerfile(readRepo(file));
    const names = new Map(stages.filter((s) => s.name).map((s) => [s.name!, s]));
    const last = stages[stages.length - 1];
    const wd = workdir(last);
    const app = path.join(tmp, path.basename(file), 'app');
    mkdirSync(app, { recursive: true });
    for (const i of last.instructions.filter((x) => x.op === 'COPY')) {
      const c = parseCopy(i.args);
      const from = c.from === null ? null : names.get(c.from);
      if (c.from !== null && (!from || from.instructions.length === 0)) continue; // a file from a base image (the node binary)
      for (const src of c.sources) {
        const rel = from ? path.posix.relative(workdir(from), src) : src;
        const target = path.posix.resolve(wd, c.dest);
        const dest = path.join(app, path.posix.relative(wd, c.dest.endsWith('/') ? path.posix.join(target, path.posix.basename(src)) : target));
        mkdirSync(path.dirname(dest), { recursive: true });
        if (rel === 'node_modules') symlinkSync(repoPath(rel), dest, 'dir');
        else cpSync(repoPath(rel), dest, { recursive: true });
      }
    }
    const env: Record<string, string> = Object.assign({}, ...last.instructions.filter((x) => x.op === 'ENV').map((x) => parseEnv(x.args)));
    const cmd = execForm(last.instructions.filter((x) => x.op === 'CMD').at(-1)!.args);
    assert.equal(cmd[0], 'node');
    // Only the image's settings (none from this process's environment), on a free loopback port.
    for (const k of Object.keys(process.env)) if (k.startsWith('RELU_SERVE_')) delete process.env[k];
    const server = await startCli({ ...env, RELU_SERVE_HOST: '127.0.0.1', RELU_SERVE_PORT: '0', RELU_SERVE_THREADS: '1' }, { argv: cmd.slice(1), cwd: app });
    const models = (await (await fetch(`${server.url}/v1/models`)).json()) as { data: { id: string }[] };
    assert.equal(models.data[0].id, 'bamboo-kjv-mini', 'the embedded default model');
    const hcLine = last.instructions.find((x) => x.op === 'HEALTHCHECK')!.args;
    const hc = execForm(/\bCMD\s+(\[.*\])\s*$/.exec(hcLine)![1]);
    const port = new URL(server.url).port;
    const r = spawnSync(process.execPath, hc.slice(1), { cwd: app, env: { ...process.env, RELU_SERVE_PORT: port }, encoding: 'utf8' });
    assert.equal(r.status, 0, `HEALTHCHECK ${hc.join(' ')}: ${r.stdout}${r.stderr}`);
    server.proc.kill('SIGTERM');
    const code = await new Promise((res) => server.proc.once('exit', res));
    assert.equal(code, 0, 'drains and exits 0 on SIGTERM');
    const down = spawnSync(process.execPath, hc.slice(1), { cwd: app, env: { ...process.env, RELU_SERVE_PORT: port } });
    assert.equal(down.status, 1, 'the health check fails once the server is gone');
  });
}
