// The activation-locality picture: for every layer, the share of all activations covered
// by the hottest x% of its neurons (a power-law curve bowing up-left; the diagonal would
// be no locality at all). Plain SVG 1.1 with no scripts or external references, so any
// browser or image viewer renders it.

import type { ActivationStats } from './stats-format.js';
import { coverageAt, layerLocality } from './locality.js';

const W = 900;
const H = 600;
const M = { left: 80, right: 190, top: 60, bottom: 70 };
const PW = W - M.left - M.right;
const PH = H - M.top - M.bottom;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Layer colour: blue for the first layer through green to red for the last. */
export function layerColor(layer: number, nLayer: number): string {
  const t = nLayer > 1 ? layer / (nLayer - 1) : 0;
  return `hsl(${Math.round(230 - 230 * t)}, 70%, 45%)`;
}

const xOf = (f: number) => M.left + f * PW;
const yOf = (f: number) => M.top + (1 - f) * PH;
const n2 = (v: number) => v.toFixed(2);

export function localitySvg(stats: ActivationStats, title?: string): string {
  const nLayer = stats.counts.length;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ` +
      `font-family="DejaVu Sans, Arial, sans-serif" font-size="13">`,
  );
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  const heading = title ?? `Activation locality: ${stats.identity.name}`;
  out.push(`<text x="${W / 2 - (M.right - M.left) / 2}" y="28" text-anchor="middle" font-size="17" font-weight="bold">${esc(heading)}</text>`);
  const source = stats.source.length > 48 ? `${stats.source.slice(0, 47)}…` : stats.source;
  const sub = `${nLayer} layers, ${stats.counts[0]?.length ?? 0} neurons per layer, ` +
    (stats.tokens > 0 ? `${stats.tokens} tokens profiled` : 'token count unknown') + ` (${source})`;
  out.push(`<text x="${W / 2 - (M.right - M.left) / 2}" y="47" text-anchor="middle" fill="#555">${esc(sub)}</text>`);

  // Grid and ticks every 10%.
  out.push('<g class="grid" stroke="#e3e3e3" stroke-width="1">');
  for (let i = 0; i <= 10; i++) {
    const f = i / 10;
    out.push(`<line x1="${n2(xOf(f))}" y1="${M.top}" x2="${n2(xOf(f))}" y2="${M.top + PH}"/>`);
    out.push(`<line x1="${M.left}" y1="${n2(yOf(f))}" x2="${M.left + PW}" y2="${n2(yOf(f))}"/>`);
  }
  out.push('</g>');
  out.push('<g class="ticks" fill="#333">');
  for (let i = 0; i <= 10; i++) {
    const f = i / 10;
    out.push(`<text x="${n2(xOf(f))}" y="${M.top + PH + 20}" text-anchor="middle">${i * 10}</text>`);
    out.push(`<text x="${M.left - 10}" y="${n2(yOf(f) + 4)}" text-anchor="end">${i * 10}</text>`);
  }
  out.push('</g>');
  out.push(`<rect class="axes" x="${M.left}" y="${M.top}" width="${PW}" height="${PH}" fill="none" stroke="#333"/>`);
  out.push(
    `<text class="xlabel" x="${M.left + PW / 2}" y="${H - 22}" text-anchor="middle">hottest neurons of the layer (%)</text>`,
  );
  out.push(
    `<text class="ylabel" transform="translate(24 ${M.top + PH / 2}) rotate(-90)" text-anchor="middle">share of the layer's activations covered (%)</text>`,
  );

  // No-locality reference, then one curve per layer (last layers drawn on top).
  out.push(`<line class="uniform" x1="${xOf(0)}" y1="${yOf(0)}" x2="${xOf(1)}" y2="${yOf(1)}" stroke="#888" stroke-dasharray="6 4"/>`);
  const samples = 200;
  stats.counts.forEach((c, l) => {
    const loc = layerLocality(c);
    const pts: string[] = [];
    for (let i = 0; i <= samples; i++) {
      // Denser sampling near 0 where the curve rises steeply.
      const f = Math.pow(i / samples, 2);
      pts.push(`${n2(xOf(f))},${n2(yOf(coverageAt(loc, f)))}`);
    }
    out.push(
      `<polyline class="layer" data-layer="${l}" fill="none" stroke="${layerColor(l, nLayer)}" stroke-width="1.6" ` +
        `stroke-opacity="0.85" points="${pts.join(' ')}"/>`,
    );
  });

  // Legend: every layer when few, else about 12 evenly spaced plus the last.
  const lx = M.left + PW + 20;
  out.push(`<g class="legend"><text x="${lx}" y="${M.top + 4}" font-weight="bold">layer</text>`);
  const step = nLayer <= 16 ? 1 : Math.ceil(nLayer / 12);
  const shown: number[] = [];
  for (let l = 0; l < nLayer; l += step) shown.push(l);
  if (shown[shown.length - 1] !== nLayer - 1 && nLayer > 0) shown.push(nLayer - 1);
  shown.forEach((l, i) => {
    const y = M.top + 24 + i * 20;
    out.push(`<line x1="${lx}" y1="${y - 4}" x2="${lx + 26}" y2="${y - 4}" stroke="${layerColor(l, nLayer)}" stroke-width="3"/>`);
    out.push(`<text x="${lx + 34}" y="${y}">${l}</text>`);
  });
  const y = M.top + 24 + shown.length * 20 + 6;
  out.push(`<line x1="${lx}" y1="${y - 4}" x2="${lx + 26}" y2="${y - 4}" stroke="#888" stroke-dasharray="6 4"/>`);
  out.push(`<text x="${lx + 34}" y="${y}">no locality</text>`);
  if (step > 1) out.push(`<text x="${lx}" y="${y + 22}" fill="#555" font-size="11">(one layer in ${step} listed)</text>`);
  out.push('</g>');
  out.push('</svg>');
  return out.join('\n') + '\n';
}
