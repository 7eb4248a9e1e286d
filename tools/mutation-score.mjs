#!/usr/bin/env node
// Mutation scores per folder from Stryker's JSON report, and the score the tests of a
// baseline commit alone reach on the same mutants (the config disables bail, so every
// killing test file is listed). Timeouts count as killed, as in Stryker's own score.
//
//   node tools/mutation-score.mjs [reports/mutation/mutation.json] [--baseline <commit>] [--unlisted]
//
// --unlisted also prints each surviving or uncovered mutant whose line no entry of the
// config's equivalentMutants names (at the start of an entry, one or more of
// 'file.ts:LINE', 'file.ts:L1,L2' or 'file.ts:L1-L2', separated by ', ' or ' / '): the
// ones that still want a test or a reason. It also prints each entry line of a file in
// the report on which no mutant survives: a stale entry (the code moved, or a test now
// kills it) that could hide a later survivor.

import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

const args = process.argv.slice(2);
const bi = args.indexOf('--baseline');
const baseline = bi >= 0 ? args[bi + 1] : null;
const unlisted = args.includes('--unlisted');
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

if (unlisted) {
  const { equivalentMutants } = await import(new URL('../stryker.config.mjs', import.meta.url).href);
  // file name -> the lines its entries name.
  const listed = new Map();
  for (const e of equivalentMutants) {
    // A leading list of references: 'a.ts:1', 'a.ts:1,4, b.ts:7' or 'a.ts:3 / b.ts:9-11'.
    const ref = /\s*(?:[,/]\s*)?([\w.-]+\.ts):(\d+(?:\s*[-,]\s*\d+)*)/y;
    for (let m = ref.exec(e); m; m = ref.exec(e)) {
      const lines = listed.get(m[1]) ?? new Set();
      for (const part of m[2].split(',')) {
        const [a, b] = part.trim().split('-').map(Number);
        for (let l = a; l <= (b || a); l++) lines.add(l);
      }
      listed.set(m[1], lines);
    }
  }
  let n = 0;
  const survivingLines = new Map(); // file name -> lines with a surviving or uncovered mutant
  for (const [file, { mutants }] of Object.entries(report.files)) {
    const name = file.split('/').pop();
    const lines = survivingLines.get(name) ?? new Set();
    survivingLines.set(name, lines);
    for (const m of mutants) {
      if (m.status !== 'Survived' && m.status !== 'NoCoverage') continue;
      lines.add(m.location.start.line);
      if (listed.get(name)?.has(m.location.start.line)) continue;
      n++;
      console.log(`unlisted ${m.status.padEnd(10)} ${file}:${m.location.start.line}:${m.location.start.column} ${m.mutatorName} -> ${JSON.stringify(m.replacement ?? '').slice(0, 70)}`);
    }
  }
  console.log(`${n} surviving mutants not named in equivalentMutants`);
  let stale = 0;
  for (const [name, lines] of listed) {
    const live = survivingLines.get(name);
    if (!live) continue; // not in this report
    for (const l of lines) {
      if (live.has(l)) continue;
      stale++;
      console.log(`stale entry ${name}:${l} (no surviving mutant on that line)`);
    }
  }
  console.log(`${stale} entry lines with no surviving mutant`);
}
