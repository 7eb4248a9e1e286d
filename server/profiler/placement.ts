// Exact hot-neuron selection: choose which FFN neurons live on the GPU so that the sum
// of their activation counts (the activations the GPU serves) is as large as possible
// while their bytes fit the budget left after the fixed VRAM part.
//
// Structure: within a layer every neuron costs the same bytes, so a layer only ever
// contributes its k hottest neurons, and layers of equal cost are interchangeable: the
// best m neurons of a group of equal-cost layers are the m hottest across the group.
// What remains is a knapsack over G groups (G = distinct per-neuron costs, usually 1 or
// 2) with concave returns P_g(m) (prefix sums of descending counts).
//
// Greedy by count per byte is NOT exact when costs differ (cost 3 count 10 vs two of
// cost 2 count 6 under a budget of 4: greedy serves 10, the optimum 12). We therefore
// solve exactly:
//  1. LP greedy: take items in descending count/byte order until the first that does
//     not fit (x^L, leftover R < c_max). Every taken item has ratio >= lambda (the first
//     rejected item's ratio) and every untaken one <= lambda.
//  2. Proximity: among optimal solutions take x* closest to x^L (L1). For a decreased
//     group g and an increased group h, if g lost >= c_h/gcd(c_g,c_h) items and h gained
//     >= c_g/gcd items, swapping those back is cost-neutral and does not lose count
//     (ratios >= lambda come back, <= lambda go), contradicting closeness. With
//     M = max c_h/gcd(c_g,c_h) over pairs, either every decrease or every increase is
//     below M items; and x* leaves less than min c_g of budget unused (else re-adding a
//     removed item would be as good and closer). Hence total added and total removed
//     bytes are each below T = (G-1)*M*c_max + c_max, and every partial sum of the
//     per-group byte changes lies in (-T, T).
//  3. DP over groups on the net byte change in units of u = gcd(costs), within
//     [-T, T], each group choosing its change d_g in the window; the answer is the best
//     final state with net change <= R. This is exact, and small: (2T/u) states times
//     (2T/c_g) choices per group.
// test/profiler/placement.test.ts checks it against exhaustive search.

export interface HotNeuronChoice {
  /** Per layer, the GPU neuron ids in ascending order. */
  gpuNeurons: Uint32Array[];
  /** Bytes the chosen neurons take. */
  bytes: number;
  /** Sum of the chosen neurons' counts. */
  covered: number;
  /** Sum of all counts. */
  total: number;
}

interface Group {
  cost: number;
  /** Neurons of all layers with this cost, hottest first: parallel arrays. */
  count: Float64Array;
  layer: Int32Array;
  id: Int32Array;
  /** prefix[m] = sum of the m hottest counts. */
  prefix: Float64Array;
}

const MAX_DP_WORK = 3e9;

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

function buildGroups(counts: Float64Array[], costs: number[]): Group[] {
  const byCost = new Map<number, number[]>();
  costs.forEach((c, l) => {
    if (counts[l].length === 0) return;
    const ls = byCost.get(c) ?? [];
    ls.push(l);
    byCost.set(c, ls);
  });
  const groups: Group[] = [];
  // Cost order, not layer order: the result must not depend on how layers are numbered.
  for (const cost of [...byCost.keys()].sort((a, b) => a - b)) {
    const layers = byCost.get(cost)!;
    const n = layers.reduce((s, l) => s + counts[l].length, 0);
    const cnt = new Float64Array(n);
    const lay = new Int32Array(n);
    const ids = new Int32Array(n);
    let k = 0;
    for (const l of layers) {
      for (let i = 0; i < counts[l].length; i++, k++) {
        cnt[k] = counts[l][i];
        lay[k] = l;
        ids[k] = i;
      }
    }
    // Hottest first; ties by layer then id so the result is deterministic.
    const order = Array.from({ length: n }, (_, i) => i);
    order.sort((a, b) => cnt[b] - cnt[a] || lay[a] - lay[b] || ids[a] - ids[b]);
    const g: Group = {
      cost,
      count: new Float64Array(n),
      layer: new Int32Array(n),
      id: new Int32Array(n),
      prefix: new Float64Array(n + 1),
    };
    order.forEach((src, dst) => {
      g.count[dst] = cnt[src];
      g.layer[dst] = lay[src];
      g.id[dst] = ids[src];
      g.prefix[dst + 1] = g.prefix[dst] + cnt[src];
    });
    groups.push(g);
  }
  return groups;
}

/**
 * a1/c1 > a2/c2 exactly (the products can pass 2^53, so fall back to BigInt then).
 * Counts are integers (activation counts), which BigInt needs. Exported for its test.
 */
export function ratioGreater(a1: number, c1: number, a2: number, c2: number): boolean {
  const l = a1 * c2;
  const r = a2 * c1;
  if (l < Number.MAX_SAFE_INTEGER && r < Number.MAX_SAFE_INTEGER) return l > r;
  return BigInt(a1) * BigInt(c2) > BigInt(a2) * BigInt(c1);
}

/** Step 1: the LP greedy's integer part, x^L, and the budget it leaves. */
function lpGreedy(groups: Group[], budget: number): { x: number[]; left: number } {
  const x = groups.map(() => 0);
  let left = budget;
  for (;;) {
    let best = -1;
    for (let g = 0; g < groups.length; g++) {
      if (x[g] >= groups[g].count.length) continue;
      if (
        best < 0 ||
        ratioGreater(groups[g].count[x[g]], groups[g].cost, groups[best].count[x[best]], groups[best].cost)
      ) {
        best = g;
      }
    }
    if (best < 0 || groups[best].cost > left) return { x, left };
    left -= groups[best].cost;
    x[best]++;
  }
}

/**
 * Chooses GPU neurons maximising the covered count under `budget` bytes.
 * counts[l][i]: activation count of neuron i of layer l; costs[l]: bytes per neuron of
 * layer l (a positive integer).
 */
export function chooseHotNeurons(counts: Float64Array[], costs: number[], budget: number): HotNeuronChoice {
  if (counts.length !== costs.length) {
    throw new Error(`${counts.length} layers of counts but ${costs.length} layer costs`);
  }
  costs.forEach((c, l) => {
    if (!Number.isSafeInteger(c) || c <= 0) throw new Error(`layer ${l}: neuron cost ${c} is not a positive integer`);
  });
  if (!Number.isSafeInteger(budget) || budget < 0) throw new Error(`budget ${budget} is not a non-negative integer`);
  const groups = buildGroups(counts, costs);
  const G = groups.length;
  let total = 0;
  for (const g of groups) total += g.prefix[g.count.length];

  const { x: xl, left: R } = lpGreedy(groups, budget);
  const take = xl.slice();
  const allTaken = groups.every((g, i) => xl[i] === g.count.length);
  if (!allTaken && G > 1) {
    const d = proximityDp(groups, xl, R);
    for (let g = 0; g < G; g++) take[g] += d[g];
  }
  // With one group the LP greedy already takes floor(budget / cost) hottest: optimal.

  const perLayer: number[][] = counts.map(() => []);
  let bytes = 0;
  let covered = 0;
  groups.forEach((g, gi) => {
    for (let k = 0; k < take[gi]; k++) perLayer[g.layer[k]].push(g.id[k]);
    bytes += take[gi] * g.cost;
    covered += g.prefix[take[gi]];
  });
  const gpuNeurons = perLayer.map((ids) => Uint32Array.from(ids).sort());
  return { gpuNeurons, bytes, covered, total };
}

/** Steps 2-3: the exact change per group relative to x^L. */
function proximityDp(groups: Group[], xl: number[], R: number): number[] {
  const G = groups.length;
  const costs = groups.map((g) => g.cost);
  const cMax = Math.max(...costs);
  let u = 0;
  for (const c of costs) u = gcd(u, c);
  let M = 0;
  for (const cg of costs) for (const ch of costs) if (cg !== ch) M = Math.max(M, ch / gcd(cg, ch));
  const T = (G - 1) * M * cMax + cMax;
  const S = Math.ceil(T / u); // states cover net changes -S*u .. +S*u
  const width = 2 * S + 1;
  const lo: number[] = [];
  const hi: number[] = [];
  let work = 0;
  for (let g = 0; g < G; g++) {
    const w = Math.floor((T - 1) / costs[g]);
    lo.push(-Math.min(xl[g], w));
    hi.push(Math.min(groups[g].count.length - xl[g], w));
    work += width * (hi[g] - lo[g] + 1);
  }
  if (work > MAX_DP_WORK) {
    throw new Error(
      `the layer costs (${costs.join(', ')} bytes per neuron) are too irregular for the exact ` +
        `placement search (${work.toExponential(2)} steps); please report this model`,
    );
  }
  let dp = new Float64Array(width).fill(-Infinity);
  dp[S] = 0;
  const choice: Int32Array[] = [];
  for (let g = 0; g < G; g++) {
    const step = costs[g] / u;
    const base = groups[g].prefix[xl[g]];
    const next = new Float64Array(width).fill(-Infinity);
    const ch = new Int32Array(width);
    for (let s = 0; s < width; s++) {
      const v = dp[s];
      if (v === -Infinity) continue;
      for (let d = lo[g]; d <= hi[g]; d++) {
        const t = s + d * step;
        if (t < 0 || t >= width) continue;
        const val = v + (groups[g].prefix[xl[g] + d] - base);
        if (val > next[t]) {
          next[t] = val;
          ch[t] = d;
        }
      }
    }
    choice.push(ch);
    dp = next;
  }
  // Net change must fit the leftover R; among equal counts prefer fewer bytes.
  const lastState = S + Math.floor(R / u);
  let best = -1;
  for (let s = 0; s <= Math.min(lastState, width - 1); s++) {
    if (dp[s] > -Infinity && (best < 0 || dp[s] > dp[best])) best = s;
  }
  const d = new Array<number>(G).fill(0);
  let s = best;
  for (let g = G - 1; g >= 0; g--) {
    d[g] = choice[g][s];
    s -= d[g] * (costs[g] / u);
  }
  return d;
}
