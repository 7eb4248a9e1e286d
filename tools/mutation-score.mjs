#!/usr/bin/env node
// Mutation scores per folder from Stryker's JSON report, and the score the tests of a
// baseline commit alone reach on the same mutants (the config disables bail, so every
// killing test file is listed). Timeouts count as killed, as in Stryker's own score.
//
//   node tools/mutation-score.mjs [reports/mutation/mutation.json] [--baseline <commit>]

import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

const args = process.argv.slice(2);
const bi = args.indexOf('--baseline');
const baseline = bi >= 0 ? args[bi + 1] : null;
const reportPath = args.find((a, i) => !a.startsWith('--') && (bi < 0 || i !== bi + 1)) ?? 'reports/mutation/mutation.json';
const report = JSON.parse(readFileSync(reportPath, 'utf8'));

// Test id -> test file.
const fileOfTest = new Map();
for (const [file, { tests }] of Object.entries(report.testFiles ?? {})) for (const t of tests) fileOfTest.set(t.id, file);

let oldFiles = null;
if (baseline) {
  const listed = execFileSync('git', ['ls-tree', '-r', '--name-only', baseline, 'test/'], { encoding: 'utf8' }).split('\n');
  oldFiles = new Set(listed.filter((f) => f.endsWith('.test.ts')).map((f) => `dist/${f.replace(/\.ts$/, '.js')}`));
}

const rows = new Map();
const row = (k) => rows.get(k) ?? (rows.set(k, { killed: 0, survived: 0, noCov: 0, killedBefore: 0, other: 0 }), rows.get(k));
for (const [file, { mutants }] of Object.entries(report.files)) {
  const folder = file.split('/').slice(0, 2).join('/');
  for (const m of mutants) {
    for (const r of [row(folder), row('all')]) {
      if (m.status === 'Killed' || m.status === 'Timeout') {
        r.killed++;
        const byOld = m.status === 'Timeout' || (m.killedBy ?? []).some((id) => !oldFiles || oldFiles.has(normal(fileOfTest.get(id))));
        if (byOld) r.killedBefore++;
      } else if (m.status === 'Survived') r.survived++;
      else if (m.status === 'NoCoverage') r.noCov++;
      else r.other++; // CompileError, RuntimeError, Ignored: not in the score
    }
  }
}

function normal(f) {
  return f ? f.replace(/\\/g, '/').replace(/^.*?(dist\/test\/)/, '$1') : '';
}

const pct = (k, r) => ((100 * k) / Math.max(1, r.killed + r.survived + r.noCov)).toFixed(1);
console.log(['folder', 'mutants', 'killed', 'survived', 'no-coverage', 'score %', baseline ? `score with ${baseline.slice(0, 7)} tests %` : ''].join('\t'));
for (const [k, r] of [...rows].sort()) {
  console.log([k, r.killed + r.survived + r.noCov, r.killed, r.survived, r.noCov, pct(r.killed, r), baseline ? pct(r.killedBefore, r) : ''].join('\t'));
}
