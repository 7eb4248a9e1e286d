// The container images cannot be built on the development machines (no daemon, no
// registry), so this checks docker/*.Dockerfile against the repository instead: every COPY
// source exists (and is not dropped by .dockerignore), CMD is package.json's start script,
// the exposed port and health check use the config's default port and /health, settings
// come as RELU_SERVE_* variables the config reads, the runtime stage runs as a non-root
// user without the toolchain, and base images are pinned by tag.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { execForm, parseCopy, parseDockerfile, parseEnv, workdir, type Stage } from './dockerfile.js';
import { defaultConfig, existsInRepo, packageJson, readRepo, root, serverEnvNames } from './repo.js';

const DOCKERFILES = ['docker/cpu.Dockerfile', 'docker/cuda.Dockerfile'];

function dockerignored(rel: string): boolean {
  const patterns = readRepo('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const parts = rel.split('/');
  return patterns.some((p) => {
    const re = new RegExp('^' + p.replace(/^\//, '').replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*') + '$');
    return parts.some((_, i) => re.test(parts.slice(0, i + 1).join('/')));
  });
}

function runtime(stages: Stage[]): Stage {
  return stages[stages.length - 1];
}

function ops(stage: Stage, op: string): string[] {
  return stage.instructions.filter((i) => i.op === op).map((i) => i.args);
}

/** Paths (relative to the runtime WORKDIR) that the runtime stage's COPYs put there. */
function runtimeFiles(stage: Stage): string[] {
  const wd = workdir(stage);
  return ops(stage, 'COPY').map((a) => {
    const c = parseCopy(a);
    const dest = path.posix.resolve(wd, c.dest);
    // `COPY a/b ./x/` copies into x; `COPY a ./x` names the target itself.
    const target = c.dest.endsWith('/') && c.sources.length === 1 && !c.sources[0].endsWith('/') ? path.posix.join(dest, path.posix.basename(c.sources[0])) : dest;
    return path.posix.relative(wd, target);
  });
}

function covered(files: string[], rel: string): boolean {
  return files.some((f) => rel === f || rel.startsWith(f + '/'));
}

for (const file of DOCKERFILES) {
  const stages = parseDockerfile(readRepo(file));
  const names = new Map(stages.filter((s) => s.name).map((s) => [s.name!, s]));
  const last = runtime(stages);

  test(`${file}: every COPY source exists`, () => {
    let fromBuild = 0;
    for (const stage of stages) {
      for (const a of ops(stage, 'COPY')) {
        const c = parseCopy(a);
        for (const src of c.sources) {
          if (c.from === null) {
            assert.ok(existsInRepo(src), `${file}: COPY ${src}: not in the repository`);
            assert.ok(!dockerignored(src), `${file}: COPY ${src}: excluded by .dockerignore`);
            continue;
          }
          const from = names.get(c.from);
          assert.ok(from || c.from.includes(':'), `${file}: COPY --from=${c.from}: no such stage, and not a tagged image`);
          // A stage that only names an image (FROM node:... AS node) supplies files we cannot see here.
          if (!from || from.instructions.length === 0) continue;
          // A path the build stage made under its WORKDIR: `npm ci` makes the same path in this checkout.
          const wd = workdir(from);
          assert.ok(src.startsWith(wd + '/'), `${file}: COPY --from=${c.from} ${src}: outside the stage's WORKDIR ${wd}`);
          const rel = path.posix.relative(wd, src);
          assert.ok(existsInRepo(rel), `${file}: COPY --from=${c.from} ${src}: this checkout's build has no ${rel}`);
          fromBuild++;
        }
      }
    }
    assert.ok(fromBuild >= 3, `${file}: expected node_modules, dist and the addon from build stages, checked ${fromBuild}`);
  });

  test(`${file}: the runtime stage runs package.json's start script with what it needs`, () => {
    const cmd = execForm(ops(last, 'CMD').at(-1)!);
    assert.equal(cmd.join(' '), packageJson().scripts.start);
    assert.equal(ops(last, 'ENTRYPOINT').length, 0, 'no ENTRYPOINT: CMD runs as is');
    const files = runtimeFiles(last);
    const cfg = defaultConfig();
    const needed = [
      'package.json', // the config's package root and the CLI's --version
      'configs/default.json', // read at every start
      path.relative(root, cfg.model).split(path.sep).join('/'), // the embedded default model
      cmd[1], // the CLI
      'build/Release/relu_serve.node', // server/engine/binding.ts's default path
      'node_modules/fastify',
    ];
    for (const rel of needed) assert.ok(covered(files, rel), `${file}: the runtime stage lacks ${rel} (has ${files.join(', ')})`);
    for (const rel of files) assert.ok(!/^(server|addon|kernels|tools|test)(\/|$)/.test(rel), `${file}: sources in the runtime stage: ${rel}`);
  });

  test(`${file}: port, health check and settings agree with the server`, () => {
    const cfg = defaultConfig();
    assert.deepEqual(ops(last, 'EXPOSE'), [String(cfg.port)], 'EXPOSE is the config default port');
    const env: Record<string, string> = Object.assign({}, ...ops(last, 'ENV').map(parseEnv));
    for (const k of Object.keys(env)) if (k.startsWith('RELU_SERVE_')) assert.ok(serverEnvNames.has(k), `${file}: ENV ${k} is not a setting the server reads`);
    assert.equal(env.RELU_SERVE_HOST, '0.0.0.0', 'listens on every interface inside the container');
    assert.equal(env.RELU_SERVE_PORT, String(cfg.port));
    const hc = ops(last, 'HEALTHCHECK');
    assert.equal(hc.length, 1);
    const m = /\bCMD\s+(\[.*\])\s*$/.exec(hc[0]);
    assert.ok(m, `HEALTHCHECK ... CMD [exec form]: ${hc[0]}`);
    const script = execForm(m[1])[1];
    assert.ok(covered(runtimeFiles(last), script), `${file}: the health check script ${script} is not copied`);
    const src = readRepo(script);
    assert.match(src, /\/health\b/);
    assert.match(src, new RegExp(`RELU_SERVE_PORT \\|\\| '${cfg.port}'`), 'the health check probes RELU_SERVE_PORT, default the config default');
  });

  test(`${file}: non-root runtime without the toolchain; base images pinned by tag`, () => {
    const user = ops(last, 'USER').at(-1);
    assert.ok(user && /^[1-9]\d*(:\d+)?$/.test(user), `${file}: USER must be a numeric non-root uid (Kubernetes runAsNonRoot checks it), got ${user}`);
    for (const run of ops(last, 'RUN')) assert.doesNotMatch(run, /\b(cmake|g\+\+|gcc|build-essential|npm ci|tsc)\b/, `${file}: toolchain in the runtime stage`);
    for (const s of stages) {
      if (names.has(s.from)) continue;
      const tag = /:([^:/@]+)$/.exec(s.from)?.[1];
      assert.ok(tag && tag !== 'latest' && /\d+\.\d+/.test(tag), `${file}: FROM ${s.from} is not pinned to a version tag`);
    }
  });
}

test('the CUDA runtime stage needs only the driver: the kernels link the CUDA runtime statically', () => {
  const last = runtime(parseDockerfile(readRepo('docker/cuda.Dockerfile')));
  assert.match(last.from, /^nvidia\/cuda:[\d.]+-base-/);
  const cmake = readRepo('kernels/cuda/CMakeLists.txt');
  assert.match(cmake, /CUDA_RUNTIME_LIBRARY Static/, 'a shared cudart needs the -runtime- base image in docker/cuda.Dockerfile');
  assert.match(cmake, /CUDA::cudart_static/);
  assert.doesNotMatch(readRepo('addon/CMakeLists.txt') + cmake, /CUDA::(cublas|cufft|curand|cusparse)/, 'CUDA libraries beyond cudart need the -runtime- base image');
});

test('the CUDA image has the CPU image\'s runtime layout: the same files, settings, user, health check and CMD', () => {
  const [cpu, cuda] = DOCKERFILES.map((f) => runtime(parseDockerfile(readRepo(f))));
  const layout = (s: Stage) => ({
    files: runtimeFiles(s).filter((f) => !f.startsWith('..')).sort(), // under WORKDIR (not the CUDA image's node binary)
    workdir: workdir(s),
    ...Object.fromEntries(['ENV', 'USER', 'EXPOSE', 'CMD', 'ENTRYPOINT'].map((op) => [op, ops(s, op)])),
    healthcheck: ops(s, 'HEALTHCHECK').map((h) => h.replace(/--start-period=\S+\s*/, '')),
  });
  assert.deepEqual(layout(cuda), layout(cpu));
});
