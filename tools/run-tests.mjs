#!/usr/bin/env node
// npm test's runner: passes node's test runner only the compiled *.test.js files, so
// helper modules under test/ (models.ts, server.ts, ...) are not run as test files
// (Node 20's --test has no glob and, given a folder, runs every .js in it).
//
//   node tools/run-tests.mjs [dist/test/<dir> ...] [-- extra node --test flags]
// Concurrency: TEST_CONCURRENCY (default 1; the suite's timing checks assume a quiet CPU).

import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const dash = args.indexOf('--');
const roots = (dash < 0 ? args : args.slice(0, dash)).filter(Boolean);
const extra = dash < 0 ? [] : args.slice(dash + 1);

function collect(dir, out) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) collect(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const files = [];
for (const r of roots.length ? roots : ['dist/test']) {
  if (statSync(r).isDirectory()) collect(r, files);
  else files.push(r);
}
if (files.length === 0) {
  console.error(`no *.test.js files under ${roots.join(', ') || 'dist/test'}; build first (npx tsc -p tsconfig.json)`);
  process.exit(1);
}
const concurrency = process.env.TEST_CONCURRENCY ?? '1';
const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, ...extra, ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
