// report.html of a run: a self-contained page (images embedded as PNG data URIs) with the
// results table, the synthetic images, attention maps beside their APA priors, the
// synthesis loss curves and the per-block quantization error.

import { encodePng } from '../image/png';

export interface ReportRow {
  label: string;
  value: string;
}

export interface HeatmapPair {
  caption: string;
  /** Row-major [gridH, gridW] maps, any scale (each is normalized to its own max). */
  attention: Float32Array;
  prior: Float32Array | null;
  gridH: number;
  gridW: number;
}

export interface LossSeries {
  name: string;
  values: number[];
}

export interface ReportInput {
  title: string;
  summary: ReportRow[];
  gridPng: Uint8Array | null;
  gridCaption: string;
  heatmaps: HeatmapPair[];
  losses: LossSeries[];
  blockErrors: { stage: string; mseBefore: number; mseAfter: number }[];
  notes: string[];
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

function dataUri(png: Uint8Array): string {
  return `data:image/png;base64,${Buffer.from(png).toString('base64')}`;
}

/** A heat map as a grayscale PNG, each cell `zoom` pixels, normalized to its maximum. */
export function heatmapPng(map: Float32Array, h: number, w: number, zoom = 12): Uint8Array {
  let mx = 0;
  for (const v of map) mx = Math.max(mx, v);
  const out = new Uint8Array(h * zoom * w * zoom);
  for (let y = 0; y < h * zoom; y++) {
    for (let x = 0; x < w * zoom; x++) {
      const v = map[Math.floor(y / zoom) * w + Math.floor(x / zoom)];
      out[y * w * zoom + x] = mx > 0 ? Math.round((255 * v) / mx) : 0;
    }
  }
  return encodePng(w * zoom, h * zoom, 1, out);
}

/** Loss curves as an inline SVG (log scale on y), one polyline per series. */
function lossSvg(series: LossSeries[]): string {
  const W = 640;
  const H = 220;
  const colors = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e'];
  const usable = series.filter((s) => s.values.some((v) => v > 0));
  if (usable.length === 0) return '<p>No loss curve (this method does not optimize images).</p>';
  const all = usable.flatMap((s) => s.values.filter((v) => v > 0));
  const lo = Math.log10(Math.min(...all));
  const hi = Math.log10(Math.max(...all));
  const span = hi - lo || 1;
  const n = Math.max(...usable.map((s) => s.values.length));
  const lines = usable.map((s, i) => {
    const pts = s.values
      .map((v, t) => (v > 0 ? `${((t / Math.max(1, n - 1)) * (W - 60) + 50).toFixed(1)},${(H - 20 - ((Math.log10(v) - lo) / span) * (H - 40)).toFixed(1)}` : null))
      .filter((p) => p !== null)
      .join(' ');
    return `<polyline fill="none" stroke="${colors[i % colors.length]}" stroke-width="1.5" points="${pts}"/><text x="${W - 130}" y="${20 + 16 * i}" fill="${colors[i % colors.length]}">${escapeHtml(s.name)}</text>`;
  });
  return `<svg width="${W}" height="${H}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="12">
<rect x="50" y="20" width="${W - 60}" height="${H - 40}" fill="none" stroke="#ccc"/>
<text x="4" y="24">${(10 ** hi).toExponential(1)}</text><text x="4" y="${H - 20}">${(10 ** lo).toExponential(1)}</text>
<text x="${W / 2}" y="${H - 4}">step (log-scale losses)</text>
${lines.join('\n')}
</svg>`;
}

export function renderReport(r: ReportInput): string {
  const rows = r.summary.map((s) => `<tr><th>${escapeHtml(s.label)}</th><td>${escapeHtml(s.value)}</td></tr>`).join('\n');
  const grid = r.gridPng ? `<figure><img src="${dataUri(r.gridPng)}" alt="synthetic images"/><figcaption>${escapeHtml(r.gridCaption)}</figcaption></figure>` : '';
  const maps = r.heatmaps
    .map(
      (m) => `<figure class="pair"><img src="${dataUri(heatmapPng(m.attention, m.gridH, m.gridW))}" alt="attention"/>${
        m.prior ? `<img src="${dataUri(heatmapPng(m.prior, m.gridH, m.gridW))}" alt="prior"/>` : ''
      }<figcaption>${escapeHtml(m.caption)}</figcaption></figure>`,
    )
    .join('\n');
  const blocks = r.blockErrors.length
    ? `<table><tr><th>stage</th><th>output MSE before reconstruction</th><th>after</th><th>reduction</th></tr>${r.blockErrors
        .map((b) => `<tr><td>${escapeHtml(b.stage)}</td><td>${b.mseBefore.toExponential(3)}</td><td>${b.mseAfter.toExponential(3)}</td><td>${b.mseBefore > 0 ? ((1 - b.mseAfter / b.mseBefore) * 100).toFixed(1) : '0'}%</td></tr>`)
        .join('')}</table>`
    : '<p>Reconstruction was off: no per-block errors measured.</p>';
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${escapeHtml(r.title)}</title>
<style>
body { font-family: sans-serif; margin: 2em; max-width: 1100px; }
table { border-collapse: collapse; margin: 1em 0; } th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: left; }
figure { display: inline-block; margin: 6px; } figure.pair img { margin-right: 4px; image-rendering: pixelated; }
img { image-rendering: pixelated; } figcaption { font-size: 12px; color: #444; max-width: 420px; }
</style></head><body>
<h1>${escapeHtml(r.title)}</h1>
<h2>Results</h2><table>${rows}</table>
${r.notes.map((n) => `<p>${escapeHtml(n)}</p>`).join('\n')}
<h2>Synthetic calibration images</h2>${grid}
<h2>Attention maps beside their priors</h2>
<p>Left: the model's class-token attention over the patch grid on a synthetic image (mean over heads, an APA-aligned block); right: the Gaussian-mixture prior it was aligned to (mean over heads).</p>
${maps || '<p>No attention priors (APA off for this method).</p>'}
<h2>Synthesis losses</h2>${lossSvg(r.losses)}
<h2>Per-block quantization error</h2>${blocks}
</body></html>
`;
}
