// Where the locality chart puts things, element by element: the plot box (x 80..710,
// y 60..530 in a 900x600 picture), grid and ticks every 10%, the curves' points mapped
// through that box, the titles centred over the plot, the legend's rows and colours.
// chart.test.ts checks the picture's overall shape and that it renders.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { layerColor, localitySvg } from '../../server/profiler/svg-chart.js';
import { coverageAt, layerLocality } from '../../server/profiler/locality.js';
import type { ActivationStats } from '../../server/profiler/stats-format.js';

interface El {
  tag: string;
  a: Record<string, string>;
  text: string;
}

/** The SVG's elements in order (it writes one element per line, no nesting but <g>). */
function elements(svg: string): El[] {
  const out: El[] = [];
  for (const m of svg.matchAll(/<(\w+)((?: [\w:-]+="[^"]*")*)\s*\/?>([^<]*)/g)) {
    const a: Record<string, string> = {};
    for (const [, k, v] of m[2].matchAll(/ ([\w:-]+)="([^"]*)"/g)) a[k] = v;
    out.push({ tag: m[1], a, text: m[3].trim() });
  }
  return out;
}

const X0 = 80;
const X1 = 710;
const Y0 = 60; // top of the plot (100%)
const Y1 = 530; // bottom (0%)
const MID = (X0 + X1) / 2;

function stats(counts: Float64Array[], over: Partial<ActivationStats> = {}): ActivationStats {
  return { identity: { name: 'm', arch: 'llama', hash: new Uint8Array(32) }, tokens: 0, source: 'profile', counts, ...over };
}

const three = [Float64Array.of(0, 10, 30, 60), Float64Array.of(1, 1, 1, 1), Float64Array.of(5, 0, 0, 0)];

test('layer colours run from hue 230 (first layer) to 0 (last); a single layer is blue', () => {
  assert.equal(layerColor(0, 3), 'hsl(230, 70%, 45%)');
  assert.equal(layerColor(1, 3), 'hsl(115, 70%, 45%)');
  assert.equal(layerColor(2, 3), 'hsl(0, 70%, 45%)');
  assert.equal(layerColor(1, 4), 'hsl(153, 70%, 45%)'); // 230 - 230/3 = 153.3
  assert.equal(layerColor(0, 1), 'hsl(230, 70%, 45%)');
});

test('the picture: 900x600 with a viewBox, fonts named, white background, one element per line', () => {
  const svg = localitySvg(stats(three));
  const lines = svg.split('\n');
  assert.equal(lines[0], '<svg xmlns="http://www.w3.org/2000/svg" width="900" height="600" viewBox="0 0 900 600" font-family="DejaVu Sans, Arial, sans-serif" font-size="13">');
  assert.equal(lines[1], '<rect x="0" y="0" width="900" height="600" fill="#ffffff"/>');
  assert.deepEqual(lines.slice(-3), ['</g>', '</svg>', '']);
  assert.equal(lines.filter((l) => l.startsWith('<polyline ')).length, 3, 'each curve on a line of its own');
  assert.equal(lines.filter((l) => l.startsWith('<line x1=')).length, 22 + 3 + 1, 'grid lines and legend swatches, one per line');
});

test('plot box, grid, ticks, axis labels and the no-locality diagonal sit where the scale says', () => {
  const els = elements(localitySvg(stats(three)));
  const axes = els.find((e) => e.a.class === 'axes')!;
  assert.deepEqual([axes.a.x, axes.a.y, axes.a.width, axes.a.height], ['80', '60', '630', '470']);
  const lines = els.filter((e) => e.tag === 'line' && !e.a.class && !e.a.stroke);
  const vertical = lines.filter((e) => e.a.x1 === e.a.x2);
  const horizontal = lines.filter((e) => e.a.y1 === e.a.y2);
  assert.equal(vertical.length, 11);
  assert.equal(horizontal.length, 11);
  for (let i = 0; i <= 10; i++) {
    const x = X0 + (i * (X1 - X0)) / 10;
    const y = Y1 - (i * (Y1 - Y0)) / 10;
    assert.deepEqual([+vertical[i].a.x1, +vertical[i].a.y1, +vertical[i].a.y2], [x, Y0, Y1], `vertical ${i}`);
    assert.deepEqual([+horizontal[i].a.y1, +horizontal[i].a.x1, +horizontal[i].a.x2], [y, X0, X1], `horizontal ${i}`);
    const xt = els.find((e) => e.tag === 'text' && e.a['text-anchor'] === 'middle' && e.a.y === '550' && e.text === String(i * 10))!;
    assert.equal(+xt.a.x, x, `x tick ${i * 10}`);
    const yt = els.find((e) => e.tag === 'text' && e.a['text-anchor'] === 'end' && e.text === String(i * 10))!;
    assert.deepEqual([+yt.a.x, +yt.a.y], [X0 - 10, y + 4], `y tick ${i * 10}`);
  }
  const xl = els.find((e) => e.a.class === 'xlabel')!;
  assert.deepEqual([+xl.a.x, +xl.a.y, xl.text], [MID, 578, 'hottest neurons of the layer (%)']);
  const yl = els.find((e) => e.a.class === 'ylabel')!;
  assert.equal(yl.a.transform, `translate(24 ${(Y0 + Y1) / 2}) rotate(-90)`);
  const uni = els.find((e) => e.a.class === 'uniform')!;
  assert.deepEqual([uni.a.x1, uni.a.y1, uni.a.x2, uni.a.y2], [String(X0), String(Y1), String(X1), String(Y0)]);
});

test('each curve samples f = (i/200)^2 and plots (80 + 630 f, 530 - 470 coverage(f)) in its layer colour', () => {
  const els = elements(localitySvg(stats(three)));
  const curves = els.filter((e) => e.tag === 'polyline');
  assert.equal(curves.length, 3);
  curves.forEach((c, l) => {
    assert.equal(c.a['data-layer'], String(l));
    assert.equal(c.a.stroke, layerColor(l, 3));
    const pts = c.a.points.split(' ').map((p) => p.split(',').map(Number));
    assert.equal(pts.length, 201);
    const loc = layerLocality(three[l]);
    pts.forEach(([x, y], i) => {
      const f = (i / 200) ** 2;
      assert.equal(x, +(X0 + f * (X1 - X0)).toFixed(2), `layer ${l} point ${i} x`);
      assert.equal(y, +(Y0 + (1 - coverageAt(loc, f)) * (Y1 - Y0)).toFixed(2), `layer ${l} point ${i} y`);
    });
  });
});

test('titles: centred over the plot, the default heading names the model, the line below sums the file up', () => {
  const els = elements(localitySvg(stats(three, { tokens: 4000, source: 's'.repeat(48) })));
  const [head, sub] = els.filter((e) => e.tag === 'text').slice(0, 2);
  assert.deepEqual([+head.a.x, head.a.y, head.text], [MID, '28', 'Activation locality: m']);
  assert.deepEqual([+sub.a.x, sub.a.y], [MID, '47']);
  assert.equal(sub.text, `3 layers, 4 neurons per layer, 4000 tokens profiled (${'s'.repeat(48)})`);
  // Over 48 characters the source is cut to 47 and an ellipsis; no token count is said so.
  const cut = elements(localitySvg(stats(three, { source: 'abcdefghij'.repeat(5) }), 'My title'));
  const texts = cut.filter((e) => e.tag === 'text');
  assert.equal(texts[0].text, 'My title');
  assert.equal(texts[1].text, `3 layers, 4 neurons per layer, token count unknown (${'abcdefghij'.repeat(5).slice(0, 47)}…)`);
  // No layers at all: still a valid picture, nothing in the legend but the diagonal.
  const none = elements(localitySvg(stats([])));
  assert.equal(none.filter((e) => e.tag === 'text')[1].text, '0 layers, 0 neurons per layer, token count unknown (profile)');
  assert.equal(none.filter((e) => e.tag === 'polyline').length, 0);
  assert.deepEqual(legend(none).rows, []);
});

/** Legend rows (swatch line + label), the no-locality row and the "one in k" note. */
function legend(els: El[]) {
  const at = els.findIndex((e) => e.tag === 'g' && e.a.class === 'legend');
  const head = els[at + 1];
  assert.deepEqual([head.a.x, head.a.y, head.text], ['730', '64', 'layer']);
  const rest = els.slice(at + 2);
  const rows: { layer: number; y: number; color: string }[] = [];
  let i = 0;
  for (; rest[i].tag === 'line' && rest[i].a['stroke-width'] === '3'; i += 2) {
    const [ln, tx] = [rest[i], rest[i + 1]];
    assert.deepEqual([ln.a.x1, ln.a.x2, ln.a.y1, ln.a.y2, tx.a.x], ['730', '756', String(+tx.a.y - 4), String(+tx.a.y - 4), '764']);
    rows.push({ layer: Number(tx.text), y: +tx.a.y, color: ln.a.stroke });
  }
  const [ul, ut] = [rest[i], rest[i + 1]];
  assert.equal(ut.text, 'no locality');
  assert.equal(ul.a.y2, ul.a.y1, 'a level swatch');
  assert.deepEqual([ul.a.x1, ul.a.x2, ul.a.y1, ul.a.stroke, ut.a.x], ['730', '756', String(+ut.a.y - 4), '#888', '764']);
  const note = rest[i + 2]?.tag === 'text' ? rest[i + 2] : undefined;
  if (note) assert.deepEqual([note.a.x, +note.a.y], ['730', +ut.a.y + 22]);
  return { rows, noLocalityY: +ut.a.y, note: note?.text };
}

test('legend: every layer up to 16, else about 12 evenly spaced plus the last, rows 20 apart', () => {
  const flat = (n: number) => Array.from({ length: n }, () => Float64Array.of(1, 2));
  for (const [n, want, note] of [
    [1, [0], undefined],
    [3, [0, 1, 2], undefined],
    [16, Array.from({ length: 16 }, (_, i) => i), undefined],
    [17, [0, 2, 4, 6, 8, 10, 12, 14, 16], '(one layer in 2 listed)'],
    [40, [0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 39], '(one layer in 4 listed)'],
  ] as const) {
    const lg = legend(elements(localitySvg(stats(flat(n)))));
    assert.deepEqual(lg.rows.map((r) => r.layer), want, `${n} layers`);
    lg.rows.forEach((r, i) => {
      assert.equal(r.y, 84 + 20 * i);
      assert.equal(r.color, layerColor(r.layer, n));
    });
    assert.equal(lg.noLocalityY, 84 + 20 * want.length + 6);
    assert.equal(lg.note, note);
  }
});
