// The locality chart and table. Structural checks always run; the rendering check needs
// Chromium (Debian's `chromium`) and is reported as skipped, not passed, without it.
// The same command renders a chart by hand:
//   chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
//     --disable-background-networking --disable-component-update --disable-sync \
//     --user-data-dir=$(mktemp -d) --screenshot=/tmp/x.png --window-size=900,600 chart.svg

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localitySvg } from '../../server/profiler/svg-chart.js';
import { coverageAt, formatLocalityTable, layerLocality, neuronsForShare } from '../../server/profiler/locality.js';
import type { ActivationStats } from '../../server/profiler/stats-format.js';
import { powerLawCounts } from './synthetic.js';

const dir = mkdtempSync(join(tmpdir(), 'rs-prof-chart-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function stats(nLayer: number, name = 'tiny <model> & "friends"'): ActivationStats {
  return {
    identity: { name, arch: 'llama', hash: new Uint8Array(32) },
    tokens: 4000,
    source: 'profile',
    counts: powerLawCounts(nLayer, 512, 4000, 0.7, 3),
  };
}

test('coverage and neurons-for-share follow the sorted counts', () => {
  const l = layerLocality(Float64Array.of(0, 10, 30, 60)); // total 100
  assert.equal(coverageAt(l, 0), 0);
  assert.equal(coverageAt(l, 0.25), 0.6);
  assert.equal(coverageAt(l, 0.5), 0.9);
  assert.equal(coverageAt(l, 0.375), 0.75); // halfway through the second neuron
  assert.equal(coverageAt(l, 1), 1);
  assert.equal(neuronsForShare(l, 0.8), 0.5);
  assert.equal(neuronsForShare(l, 0.6), 0.25);
  assert.equal(l.dead, 1);
});

test('the SVG has axes, labels, a legend, one monotone curve per layer inside the plot, escaped text', () => {
  const s = stats(20);
  const svg = localitySvg(s);
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="900" height="600"/);
  assert.ok(svg.trimEnd().endsWith('</svg>'));
  assert.match(svg, /hottest neurons of the layer \(%\)/);
  assert.match(svg, /share of the layer's activations covered \(%\)/);
  assert.match(svg, /class="legend"/);
  assert.match(svg, /no locality/);
  assert.match(svg, /tiny &lt;model&gt; &amp; &quot;friends&quot;/);
  assert.ok(!svg.includes('<model>'), 'raw model name must be escaped');
  // Balanced elements: every opening tag of a container closes.
  for (const tag of ['g', 'svg']) {
    assert.equal((svg.match(new RegExp(`<${tag}[ >]`, 'g')) ?? []).length, (svg.match(new RegExp(`</${tag}>`, 'g')) ?? []).length, tag);
  }
  const curves = [...svg.matchAll(/<polyline class="layer" data-layer="(\d+)"[^>]*points="([^"]+)"/g)];
  assert.equal(curves.length, 20);
  curves.forEach((m, i) => {
    assert.equal(Number(m[1]), i);
    const pts = m[2].split(' ').map((p) => p.split(',').map(Number));
    let prevX = -Infinity;
    let prevY = Infinity;
    for (const [x, y] of pts) {
      assert.ok(x >= 80 && x <= 710 && y >= 60 && y <= 530, `point ${x},${y} inside the plot`);
      assert.ok(x >= prevX && y <= prevY + 1e-9, 'coverage never decreases');
      prevX = x;
      prevY = y;
    }
    assert.equal(pts[pts.length - 1][1], 60, 'all neurons cover 100%');
  });
});

test('the terminal table has one row per layer and predictor columns when measured', () => {
  const s = stats(3);
  const t = formatLocalityTable(s).split('\n');
  assert.equal(t.length, 1 + 3 + 1);
  assert.match(t[0], /layer +n_ff +fire rate +dead +top10% covers/);
  assert.match(t[4], /hottest 10% of neurons cover \d+\.\d% of activations.*4000 tokens/);
  const p = formatLocalityTable({ ...s, predictor: [0, 1, 2].map(() => ({ truePositive: 90, falsePositive: 10, falseNegative: 30 })) });
  assert.match(p, /pred\. recall/);
  assert.match(p.split('\n')[1], /75\.0% +90\.0%$/);
});

function chromium(): string | undefined {
  return ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
}

function render(bin: string, svgPath: string, png: string): Buffer {
  execFileSync(
    bin,
    ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', `--user-data-dir=${mkdtempSync(join(dir, 'chr-'))}`,
      `--screenshot=${png}`, '--window-size=900,600', svgPath],
    { stdio: 'ignore', timeout: 120000 },
  );
  return readFileSync(png);
}

test('the SVG renders in headless Chromium (a 900x600 image far from blank)', (t) => {
  const bin = chromium();
  if (!bin) {
    t.skip('chromium is not installed (apt-get install -y chromium): rendering not checked');
    return;
  }
  const chart = join(dir, 'chart.svg');
  writeFileSync(chart, localitySvg(stats(32)));
  const blank = join(dir, 'blank.svg');
  writeFileSync(blank, '<svg xmlns="http://www.w3.org/2000/svg" width="900" height="600"><rect width="900" height="600" fill="#fff"/></svg>');
  const png = render(bin, chart, join(dir, 'chart.png'));
  const blankPng = render(bin, blank, join(dir, 'blank.png'));
  assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG');
  assert.equal(png.readUInt32BE(16), 900);
  assert.equal(png.readUInt32BE(20), 600);
  // A white page compresses to a few KB; curves, text and grid make the image far larger.
  assert.ok(png.length > 8 * blankPng.length, `chart PNG ${png.length} B vs blank ${blankPng.length} B`);
});
