// Imported by every property test: fast-check runs from one fixed seed, so `npm test` and
// CI are reproducible (a red CI must not depend on luck). FC_SEED=<n> runs another seed,
// FC_SEED=random a new one each time (what to do locally to look for new cases).
import fc from 'fast-check';

const s = process.env.FC_SEED;
if (s !== 'random') fc.configureGlobal({ seed: s ? Number(s) : 20261204 });
