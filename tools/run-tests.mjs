#!/usr/bin/env node
// npm test's runner: passes node's test runner only the compiled *.test.js files, so
// helper modules under test/ (models.ts, server.ts, ...) are not run as test files
// (Node 20's --test has no glob and, given a folder, runs every .js in it).
//
//   node tools/run-tests.mjs [--long] [dist/test/<dir or file> ...] [-- extra node --test flags]
//
// Which files: every *.test.js except *.long.test.js (minutes each: a second full C++
// build, a 1b model); --long runs only those (`npm run test:long`; CI runs both).
// A file given by name runs whatever its name.
//
// Two groups, so the suite fits in 2 minutes on a 2-core machine without making timing
// checks flaky: files that mark themselves with the line `// test-runner: alone` (they
// time something: the sampler, the tokenizer, /health latency, a shutdown) run one at a
// time after all the others; the others run TEST_CONCURRENCY files at a time (default 2:
// most of them wait on a child process, a socket or one engine thread). Each test fails
// after TEST_TIMEOUT_MS (default 5 minutes, 20 with --long).

import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const dash = args.indexOf('--');
const own = dash < 0 ? args : args.slice(0, dash);
const extra = dash < 0 ? [] : args.slice(dash + 1);
const long = own.includes('--long');
const roots = own.filter((a) => a && a !== '--long');

function collect(dir, out) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) collect(p, out);
    else if (name.endsWith('.test.js') && name.endsWith('.long.test.js') === long) out.push(p);
  }
  return out;
}

const files = [];
for (const r of roots.length ? roots : ['dist/test']) {
  if (statSync(r).isDirectory()) collect(r, files);
  else files.push(r);
}
if (files.length === 0) {
  console.error(`no ${long ? '*.long.test.js' : '*.test.js'} files under ${roots.join(', ') || 'dist/test'}; build first (npx tsc -p tsconfig.json)`);
  process.exit(1);
}

const ALONE = /^\/\/ test-runner: alone\b/m;
const alone = files.filter((f) => ALONE.test(readFileSync(f, 'utf8')));
const together = files.filter((f) => !alone.includes(f));
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
// A test that hangs (a native wait that never ends) fails after this long instead of
// holding CI until its own limit; TEST_TIMEOUT_MS overrides it.
const timeout = process.env.TEST_TIMEOUT_MS ?? (long ? '1200000' : '300000');

let status = 0;
for (const [group, c] of [[together, concurrency], [alone, '1']]) {
  if (group.length === 0) continue;
  const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${c}`, `--test-timeout=${timeout}`, ...extra, ...group], { stdio: 'inherit' });
  if (r.status !== 0) status = r.status ?? 1;
}
process.exit(status);
