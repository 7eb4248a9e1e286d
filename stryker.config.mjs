// Mutation testing of the serving layer (npm run mutate). See test/README.md.
//
// Stryker copies the repo into .stryker-tmp/, switches mutants into the TypeScript
// sources, compiles them with tsc (buildCommand) and runs the compiled unit-test files
// with node's own runner through the TAP runner, one file per process. Coverage is
// recorded per test file, so each mutant only runs the files that reach it.
//
// Scope it to one folder with FOLDER (server/<f> mutated, dist/test/<f> run), or with
// MUTATE and TEST_FILES (comma-separated globs), e.g.
//   FOLDER=sampling STRYKER_CONCURRENCY=1 STRYKER_BAIL=1 npm run mutate
//   MUTATE='server/sampling/select.ts' TEST_FILES='dist/test/sampling/kept-set*.test.js' npm run mutate
// Incremental mode keeps results in reports/stryker-incremental.json: a rerun only
// tests mutants whose code or tests changed, and keeps the results of files outside
// this run's scope, so folders can be done one at a time into the same file.

const folders = ['sampling', 'scheduler', 'http', 'tokenizer', 'profiler'];
const scope = process.env.FOLDER ? process.env.FOLDER.split(',') : folders;
const mutate = process.env.MUTATE ? process.env.MUTATE.split(',') : scope.map((f) => `server/${f}/**/*.ts`);

// Surviving mutants judged equivalent (no input can tell them from the original), one
// line each. Anything that survives and is not listed here is a missing test.
export const equivalentMutants = [
  'stop-matcher.ts:21 `stops.length === 0` early return -> false: the general path shows the piece and holds nothing when there are no stops',
  'stop-matcher.ts:26 `at < cut` -> `at <= cut`: equal positions give the same cut',
  "stop-matcher.ts:30 `pending = ''` after a stop -> any string: once done, push returns early and flush returns '', pending is never read",
  'stop-matcher.ts:49 Math.min(s.length - 1, buf.length) -> Math.max / s.length + 1: longer k compare the whole stop (or more), which cannot end buf since push cut at it',
  'stop-matcher.ts:50 `k > best` -> `k >= best`: k = best re-finds a suffix of the length already held (k = 0 matches the empty prefix), best is unchanged',
  "utf8-bytes.ts:47 `n === 0 ? '' : drain(true)` -> drain(true): drain of nothing returns ''",
  'utf8-bytes.ts:67 `n < need && final` -> `true && final` / `n <= need && final`: flush only ever sees a held-back prefix, so n < need whenever final is set',
  'slot-cache.ts:40 `bestAt = -1` -> `+1`: the first free slot always beats bestLen -1 and overwrites it (an empty free list is a caller bug either way)',
  'slot-cache.ts:73 commonPrefix Math.min -> Math.max: past the shorter list one side is undefined and the compare stops at the same place',
  'stream-decoder.ts:31,32,36 the per-vocabulary text cache rebuilt or recomputed every time (3 mutants): the same text, only slower',
  "stream-decoder.ts:80 `pendingBytes > 0 ?` -> true / `>= 0`: flush() with nothing held returns ''",
  'sampler.ts:130 `temperature === 0 ||` -> false: 1 / 0 is Infinity, which the isFinite test makes greedy too',
  'sampler.ts:145 no-penalty early return removed: with rp 1, pp 0, fp 0 the loop writes every value back unchanged',
  'sampler.ts:147 out-of-range id guard removed or loosened (5 mutants): a Float32Array ignores reads and writes past its ends',
  'sampler.ts:149 `rp !== 1` -> true / `v > 0` -> `v >= 0`: dividing or multiplying by 1 changes nothing, and 0 (or -0) divided or multiplied by rp is the same 0',
  'sampler.ts:164 draw `u < cum` -> `u <= cum`: differs only if a draw is exactly 0.0 (2^-53 per draw) while the first candidate weighs 0',
  'sampler.ts:166 fallback `cand[count - 1]` (no coverage): unreachable, u < total and the running sum ends at exactly total (same additions, same order)',
  'sampler.ts:184 `id < w.length` -> `<=`: w[length] is undefined, which the finiteness check skips',
  'sampler.ts:188 lmax scan forced on / `i <= count` / `>=` (3 mutants): on the top-k path cand[0] is already the best; an extra or equal entry is never above the true best',
  'sampler.ts:201 top-k cut `kept < count` -> `<=`: p < 1 makes p x z <= z, which the running sum (same order as z) reaches by the last kept',
  'sampler.ts:223 `minP > 0` -> true / `>= 0`: with minP 0 every weight is >= 0 and all are kept',
  'sampler.ts:251 logprobsOf `i <= w.length` / `w[i] >= lmax` (2 mutants): undefined past the end compares false; an equal value leaves lmax unchanged',
  'sampler.ts:253 logprobsOf `w[i] > -Infinity` guard -> true / `>=` / `i <= w.length` (3 mutants): exp(-Infinity) adds 0; undefined past the end compares false',
  "params.ts:51,62 `typeof v !== 'number' ||` -> false (2 mutants): Number.isFinite and Number.isSafeInteger are false for any non-number, so it is refused the same way",
  "params.ts:103 `typeof k === 'string' &&` -> true: a number key (from a Map) passes /^\\d+$/ only as a plain integer, and Number() gives it back unchanged",
  "params.ts:104 `typeof id !== 'number' ||` -> false: a string id is not an integer either, the same refusal",
  'select.ts:12 argmax `i < w.length` -> `<=`: w[length] is undefined, and undefined > bv is false',
  'select.ts:23 ahead `a < b` -> `a <= b`: ahead is never asked about an id and itself (heap, partition and insertion compare distinct slots)',
  'select.ts:46 topK `id < w.length` -> `<=`: w[length] is undefined, which the finiteness check skips',
  'select.ts:51 sift-up `i > 0` -> `i >= 0`: at the root the parent slot out[-1] is undefined, ahead() is false and the loop breaks',
  'select.ts:65 heap-sort `end > 0` -> `end >= 0`: end = 0 swaps the root with itself and sifts an empty heap',
  'select.ts:96 `hi - lo > 16` -> `>= 16`: the quickselect/insertion-sort cutoff is speed only, both find the same prefix',
  'select.ts:98 mid `(lo + hi) >> 1` -> `(lo - hi) >> 1`: a pivot choice (ids[mid] undefined never swaps); any pivot gives the same prefix',
  'select.ts:100-102 median-of-three swaps forced true/false (6 mutants): pivot choice only, the partition and the returned prefix do not depend on it',
  'select.ts:106 partition `i < last` -> `i <= last`: the pivot is not ahead of itself, so the extra step moves nothing',
  'select.ts:118 `acc >= target` -> `acc > target`: at acc == target the next rounds see acc + mass >= target, shrink the range to empty and return the same store + 1 through max(1, hi)',
  'select.ts:122 insertion sort from `lo - 1`: its first two steps have j > lo false and do nothing',
  'select.ts:123 `j > lo &&` -> true / `j >= lo`: everything before lo is ahead of the range (or undefined at -1), so ahead() stops the walk there',
  'placement-plan.ts:55 `group <= 1` -> false / `< 1` (2 mutants): with group 1 each bundle is one neuron and bundle k is the layer\'s k-th in (count desc, id asc) order, the order chooseHotNeurons ranks neurons in (ties by layer, then id), so the same neurons are taken (3000 random cases with ties agree)',
  'placement-plan.ts:56 tie comparator `a - b` -> `a + b`: the ids come in ascending order and V8 sort is stable, so a comparator that says "after" for every tie keeps that order (as placement.ts:86)',
  'placement.ts:86 tie comparator `lay[a] - lay[b]` / `ids[a] - ids[b]` -> `+` (2 mutants): the neurons are listed layer by layer, id by id, and V8 sort is stable, so a comparator that says "after" for every tie keeps that order',
  'placement.ts:112 safe-range test -> always BigInt / `||` / one side only / `<=` / `>=` (8 mutants): BigInt is exact for the integer counts; when one product is safe and the other is not, the double compare is right (the unsafe one is >= 2^53 - 1 > the exact safe one)',
  'placement.ts:156 `xl.slice()` -> `xl`: xl is not read after take is changed',
  'placement.ts:158 `G > 1` -> true / `>= 1` (2 mutants): with one cost group M = 0, T = cMax, the window floor((T - 1) / cMax) is 0, so the search returns d = 0',
  'placement.ts:160 `g < G` -> `g <= G`: take[G] is never read',
  'placement.ts:184 `cg !== ch` -> true: ch / gcd(ch, ch) = 1 never raises M, which is >= 2 whenever there are two distinct costs',
  'placement.ts:197 `work > MAX_DP_WORK` -> `>=`: differs only at exactly 3e9 steps, which no two-cost problem gives (odd widths 2q(q+1)+1 checked for all cost pairs below 3000); the limit is a guard rail',
  'placement.ts:211 `s < width` -> `<=`: dp[width] is undefined, every value built from it is NaN and never stored',
  'placement.ts:216 bounds check `t < 0 || t >= width` removed or loosened (6 mutants): Float64Array ignores writes past its ends and reads undefined there (compares false); state 0 is a net change <= -T, outside the proximity bound, so skipping it only changes which of equally good answers a tie picks',
  'placement.ts:217 `prefix - base` -> `prefix + base`: adds the same 2 x base to every path (each path crosses every group once), integer sums stay exact, same argmax',
  'placement.ts:218,229,231 DP tie rules (`val >= next[t]`, `best = +1`, `best <= 0`, `dp[s] >= dp[best]`; 4 mutants): only change which of several answers with the same covered count is returned; the contract is maximal coverage within the budget (placement.test.ts checks it against exhaustive search)',
  'placement.ts:230 `width - 1` -> `width + 1`: dp past its end reads undefined, which compares false',
  'placement.ts:231 `dp[s] > -Infinity` -> true / `>=` (2 mutants): a -Infinity state is replaced by the first finite one (dp[S] is always finite), the same pick',
  'placement.ts:233 `new Array(G)` -> `new Array()`: the backtrack loop assigns every d[g] before it is returned',
  "binary-io.ts:84, stats-format.ts:77, placement-format.ts:70, torch-pickle.ts:203,215, zip-archive.ts:81 Buffer.from(s, 'utf8' / 'latin1') -> Buffer.from(s, '') (6 mutants): an empty encoding is utf8, and the latin1 strings are ASCII magics",
  'locality.ts:18 `i < sorted.length` -> `<=`: sorted[length] is undefined (not 0, not counted) and a Float64Array ignores the write past its end',
  'locality.ts:27 `l.nFf === 0` -> false: a layer without neurons has total 0, which the first test already returns on',
  'locality.ts:60 `l.nFf > 0` -> true / `>= 0` (2 mutants): with no neurons the total is 0 and 0 / 0 is NaN, shown as "-" the same way',
  "model-file.ts:23 magic check -> false (+ its message, no coverage): readGgufHeader already refuses any magic but GGUF and PWRI",
  "model-file.ts:29 `typeof v === 'number'` -> true: Number.isInteger is false for any non-number",
  "model-file.ts:30 bigint branch -> false / `'bigint'` -> '' / `v < 1n << 31n` -> `<=` (3 mutants): the header reader gives bigints only past 2^53, which this branch never accepts",
  'model-identity.ts:59 sort comparator `<` / `>` variants (5 mutants): tensor names in a GGUF are distinct, and V8 sorts using only "comparator < 0", which every variant answers the same for distinct names',
  'model-identity.ts:73 `i < a.length` -> `<=`: both are undefined one past the end of equal-length arrays',
  'placement-format.ts:62 `i < ids.length` -> `<=`: ids[length] is undefined, both checks compare false',
  'placement-format.ts:64 `i > 0` -> true / `>= 0` (2 mutants): at i = 0, ids[-1] is undefined and the comparison is false',
  'placement-format.ts:144 `k !== 0` -> true: 0 % 256 is 0, accepted either way',
  "powerinfer-pt.ts:46 `typeof obj !== 'object'` -> false: a non-object has no kind 'tensor', refused by the next test with the same message",
  'profile-run.ts:22 `i < n` -> `<=`: an Int32Array ignores the write past its end',
  'profile-run.ts:124 `rate > 0` -> true / `>= 0` (2 mutants): at rate 0 the ETA is x / 0 = Infinity or NaN, not finite, printed as --:-- the same way',
  'stats-format.ts:73 `c > max` -> `>=`: the same maximum',
  'stats-format.ts:179 `i < layer.length` -> `<=`: a Float64Array ignores the write past its end',
  "torch-pickle.ts:55 `typeof v === 'number'` -> true: Number.isSafeInteger is false for a bigint",
  "torch-pickle.ts:56 bigint branch -> false / `'bigint'` -> '' / `<=` -> `<` / `>= 0n` -> `> 0n` (4 mutants): LONG1 gives bigints only outside the safe range, which this branch never accepts",
  'torch-pickle.ts:124 `end < 0` -> `<= 0`: the GLOBAL opcode is read before the line, so p >= 1 and a newline is never found at 0',
  'torch-pickle.ts:173 LONG1 `n > 0 &&` -> true / `>= 0` (2 mutants): with n = 0 the byte tested is the length byte itself, 0, so no sign adjustment',
  'merge-queue.ts:30 `left[a] < left[b]` -> `<=`: equal score and equal left are two queued merges of the same left symbol; the encoder skips the stale one whichever pops first',
  'merge-queue.ts:59 sift-up `i > 0` -> `i >= 0`: at the root the parent slot heap[-1] is undefined, before() is false and the loop breaks',
  'merge-queue.ts:79 `last === 0` early return -> false: with one entry left the sift loop breaks at once and writes it back in place',
  'merge-queue.ts:84 `l >= last` -> `l > last`: at l = last the only child is the moved entry itself, before(e, e) is false and the loop breaks',
  'merge-queue.ts:86 `r < last` -> `r <= last`: at r = last the right child is the moved entry itself: picking it breaks the loop exactly where the left child would have',
  'engine-loop.ts:188 cancel() `if (st.cancelled) return` -> false: a second cancel finds a waiting job gone from the queue (remove is false) or re-marks a running one, both no-ops',
  'engine-loop.ts:190,257 cancel of a running job taking the waiting path (`!st.admitted` -> true, `admitted = true` -> false): the flag is set first and the busy loop reaps it after the step; kick() only wakes an idle loop, which never holds an admitted job',
  'engine-loop.ts:264 `next: -1` -> +1: next is sampled before it is decoded (reuse < prompt length, so every sequence prefills at least one token first)',
  'engine-loop.ts:267 `if (spec.onCached)` -> true: calling the missing callback throws inside safeCall, which swallows it',
  'engine-loop.ts:269 `onAdmit?.(...)` -> `onAdmit(...)`: a missing callback throws inside safeCall, which swallows it',
  'engine-loop.ts:277 `this.stopped && runningJobs.size === 0` -> `this.stopped`: close() cancels every running job, so the reap just before leaves none',
  'engine-loop.ts:278,299 `if (!this.stopped) this.admit()` -> always: close() drains the queue and refuses submits before it sets stopped, so there is nothing to admit',
  'engine-loop.ts:280 `if (this.stopped) continue` -> false: unreachable, stopped with nothing running returned at line 277 (a reaped cancelled job leaves no sequence)',
  'engine-loop.ts:387 failed decode `if (!seq.ended)` -> true: deliver() skips the end of a sequence that already ended',
  'engine-loop.ts:392 `seq.prefilled < prompt.length` -> true / `<=`: prefilled only past the prompt, where every test reads it as >= prompt length either way',
  'engine-loop.ts:395 `f.rows.length > 0` -> true / `>= 0`: with no rows nVocab is never used (the forEach over rows is empty)',
  "engine-loop.ts:430 emission kind 'token' -> '': deliver() only tests for 'end', anything else is a token",
  'engine-loop.ts:445 deliver `if (e.seq.ended) continue` -> false: an emission for an ended sequence is only ever an end, which notifyEnd ignores',
  'engine-loop.ts:450 `let keep = true` -> false: onToken either assigns keep or throws (then the loop continues before keep is read)',
  'tokenizer-adapter.ts:51 primer `v.idToByte[id] < 0` -> true: byte tokens are type byte, which the type test already rejects',
  'tokenizer-adapter.ts:51 primer `v.tokens[id].length > 0` -> true / `>= 0`: an empty normal piece gives no text and still ends the first-token state, a working primer',
  'tokenizer-adapter.ts:50 primer loop `primer < 0` -> true (and <= 0): the last plain token primes as well as the first (its text is thrown away)',
  "tokenizer-adapter.ts:45 `typeof eot === 'number'` -> true: a string or bigint eot would go into the set, but isEndToken is only asked about numbers, which never equal it",
  'tokenizer-adapter.ts:50 primer loop `id <= v.size`: types[size] is undefined, so the extra step never picks',
  'model-file-guard.ts:158 stop() `if (this.timer)` -> true: clearInterval(null) does nothing',
  "validate.ts:109,152,326 `typeof v !== 'number' ||` -> false (3 mutants): Number.isFinite / Number.isInteger are false for any non-number, the same refusal",
  'validate.ts:149 logit_bias key regex without `$`: a key with trailing non-digits is NaN as a Number, which isSafeInteger refuses the same way',
  "validate.ts:272 tool_calls parsed for every role: other roles have it refused by the key check unless it is null, which parses to undefined",
  'tools.ts:99 / structured.ts:20 `err instanceof SchemaError` -> true: schemaRules / schemaToGbnf throw nothing else (and parseGbnf of their output never fails)',
  'structured.ts:57 `err instanceof GrammarError` -> true: parseGbnf throws only GrammarError',
  'generate.ts:119 `plan.maxTokens !== undefined &&` -> true: undefined > room is false, the same cut flag',
  'generate.ts:162 genMs guard -> true / `||` / either side -> true (4 mutants): firstTokenAt and lastTokenAt are set together in onToken, and with neither set null - null is 0, the same genMs',
  'generate.ts:170 `n > 1 &&` -> true / `n >= 1` (2 mutants): genMs > 0 needs two tokens at different times, so n >= 2 whenever the other side holds',
  "generate.ts:235,243 emit mode 'cut' / 'no' -> '' (3 mutants): emit only tests for 'all'",
  'generate.ts:270 takeBefore `k < this.offsets.length` -> true / `<=` (2 mutants): offsets[length] is undefined, and undefined < shown is false',
  'generate.ts:279,280 takeAll resets `[]` -> a non-empty array (2 mutants): takeAll runs once, at the end of a sequence, and the queue is never read after it',
  'tools.ts:106 `if (conv.rules)` -> true: an empty rule text adds a blank line, which GBNF ignores',
  "vram-costs.ts:122 `m?.[2] ?? ''` -> any string: rest is only read behind `m &&`, so the fallback for a non-layer name is never used",
  "vram-costs.ts:190 `unit.length > 1 &&` -> true / `>= 1` (2 mutants): the unit is never empty (default 'b'), and for a one-letter unit unit[1] is undefined, not 'i'",
  "vram-costs.ts:197 units[0] 'B' -> '': formatBytes prints bytes (i = 0) from its own `${n} B` template and never reads units[0]",
  "tool-call-parser.ts:155 drop stage `f === 'hermes' &&` -> true: only Hermes reaches the drop stage (the other formats switch to plain text when a started call breaks)",
  "tool-call-parser.ts:39 `ws = ''` initially -> any string: ws is read only when a call has started, and startCall sets it to '' first",
  "tool-call-parser.ts:57 finish() `md.m === 'region'` -> true: the only other mode left is 'plain', whose stage is undefined, so the stage test is false",
  'tool-call-parser.ts:71 emitArgs `last.index === index` -> true: args only follow their own call\'s start or args; a later call\'s start event always comes between',
  "tool-call-parser.ts:107 `body === ''` -> false / '' -> another string (2 mutants): PYTHON_TAG.startsWith('') is true, the same hold",
  'tool-call-parser.ts:128 `buf.endsWith(open)` -> startsWith: held is a proper prefix of the marker, so buf is at most the marker long and both mean buf === open',
  'tool-call-parser.ts:134 held-prefix search from Math.max(...) / `open.length + 1` / `k >= 0` (3 mutants): buf is at most the marker long and does not end with it (tested just before), so a longer first k finds nothing; k = 0 keeps 0',
  "tool-call-parser.ts:171 llama3 `;` separator `md.stage === 'after'` -> true: a llama3 region is opened on its '{' (lead mode hands that char over), so its 'before' stage never sees another char",
  "tool-call-parser.ts:204 `f === 'hermes' || f === 'mistral'` -> true: llama3 is in plain mode there, where reading raw char by char gives the same text as text(raw)",
  "tool-call-parser.ts:221 `this.calls > 0` -> true / `>= 0` (2 mutants): stage 'after' follows only a finished object, which only a started call can be (finish fails an object without a name)",
];

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'tap',
  tap: {
    // The fast unit tests of these folders (the e2e and engine suites are too slow per
    // mutant). TEST_FILES narrows it further (comma-separated globs), e.g. to the folder
    // being mutated: on 2 shared cores each test file costs a node start per mutant.
    testFiles: process.env.TEST_FILES ? process.env.TEST_FILES.split(',') : scope.map((f) => `dist/test/${f}/**/*.test.js`),
  },
  buildCommand: 'npx tsc -p tsconfig.json',
  // STRYKER_TS_CHECK=1 type-checks each mutant first (@stryker-mutator/typescript-checker)
  // and drops those that do not compile; off by default (not yet timed here; it adds a
  // type check per mutant). Without it tsc still builds every mutant (@ts-nocheck).
  checkers: process.env.STRYKER_TS_CHECK ? ['typescript'] : [],
  tsconfigFile: 'tsconfig.json',
  mutate,
  ignorePatterns: ['dist', 'reports', 'models/.cache', 'build-native', 'build-device', '.stryker-tmp'],
  coverageAnalysis: 'perTest',
  // Run every covering test file on each mutant, not only up to the first that fails: the
  // report then names all the files that kill it, so the score the older tests alone
  // reach can be read from the same run (tools/mutation-score.mjs).
  // STRYKER_BAIL=1 stops at the first killing file instead: much faster on 2 shared cores
  // (the score is the same; only the baseline comparison needs every killer).
  disableBail: !process.env.STRYKER_BAIL,
  incremental: true,
  incrementalFile: 'reports/stryker-incremental.json',
  concurrency: Number(process.env.STRYKER_CONCURRENCY ?? 2),
  timeoutMS: 20000,
  reporters: ['clear-text', 'progress', 'json'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  thresholds: { high: 90, low: 80, break: 80 },
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
};
