// `compare --sweep`: one table over several protocols. A sweep of a setting (the APA loss,
// the TV prior, the reconstruction length) is one `compare` run per value, seeds possibly
// split over processes; this groups the runs by protocol, merges each group as
// `compare --merge` does (same model, seeds agreeing), and writes one row per protocol and
// method, labelled by what sets it apart from the others.

import { SpdfqError } from '../errors';
import { CompareRecord, mergeCompareRecords, PROTOCOL_KEYS, protocolValue } from './merge';

export interface SweepRow {
  /** The protocol settings that differ between the sweep's groups, as `path=value`. */
  label: string;
  method: string;
  /** top-1 per seed, per bit width. */
  cells: Record<string, number[]>;
  /** SPDFQ ablation values per variant (at the group's ablation bits), when measured. */
  ablation: Record<string, number[]>;
  featureCosine: number | null;
  frechet: number | null;
}

export interface Sweep {
  fpTop1: number;
  bits: string[];
  rows: SweepRow[];
}

/** Flattens a protocol into `path=value` pairs (objects by their keys, values as JSON). */
function flatten(prefix: string, v: unknown, out: Map<string, string>): void {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) flatten(prefix ? `${prefix}.${k}` : k, x, out);
  } else {
    out.set(prefix, JSON.stringify(v));
  }
}

function protocolPairs(r: CompareRecord): Map<string, string> {
  const out = new Map<string, string>();
  for (const k of PROTOCOL_KEYS) flatten(k, JSON.parse(protocolValue(r, k)), out);
  return out;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

export function sweepTable(inputs: { source: string; record: CompareRecord }[]): Sweep {
  if (inputs.length === 0) throw new SpdfqError('E_CONFIG', 'compare --sweep: expected at least one results.json, received none');
  const groups = new Map<string, { source: string; record: CompareRecord }[]>();
  for (const input of inputs) {
    const key = PROTOCOL_KEYS.map((k) => protocolValue(input.record, k)).join('\u0000');
    groups.set(key, [...(groups.get(key) ?? []), input]);
  }
  const merged = [...groups.values()].map((g) => mergeCompareRecords(g));
  // Settings present in every group with one value are common; the rest label the rows.
  const pairs = merged.map(protocolPairs);
  const paths = new Set(pairs.flatMap((p) => [...p.keys()]));
  const varying = [...paths].filter((p) => new Set(pairs.map((x) => x.get(p) ?? '(default)')).size > 1).sort();
  const fp = merged[0].result.fpTop1;
  for (const m of merged) {
    if (Math.abs(m.result.fpTop1 - fp) > 1e-9) throw new SpdfqError('E_CONFIG', `compare --sweep: runs of different models or evaluation sets (full-precision top-1 ${m.result.fpTop1} vs ${fp})`);
  }
  const bits = [...new Set(merged.flatMap((m) => m.options.bits))];
  const rows: SweepRow[] = [];
  merged.forEach((m, i) => {
    // Strings without their JSON quotes; settings this group leaves at the default are omitted.
    const shown = (v: string) => (/^"[^"]*"$/.test(v) ? v.slice(1, -1) : v);
    const label = varying.filter((p) => pairs[i].has(p)).map((p) => `${p.replace(/^synthesis\./, '')}=${shown(pairs[i].get(p)!)}`).join(' ') || '(defaults)';
    const methods = m.options.methods.length > 0 ? m.options.methods : ['spdfq'];
    for (const method of methods) {
      const q = m.result.quality[method] ?? [];
      rows.push({
        label,
        method,
        cells: m.result.cells[method] ?? {},
        ablation: method === 'spdfq' ? m.result.ablation : {},
        featureCosine: q.length ? mean(q.map((x) => x.featureCosine)) : null,
        frechet: q.length ? mean(q.map((x) => x.frechet)) : null,
      });
    }
  });
  return { fpTop1: fp, bits, rows };
}

function cell(xs: number[] | undefined): string {
  if (!xs || xs.length === 0) return '—';
  const m = mean(xs);
  if (xs.length === 1) return `${(m * 100).toFixed(2)} (n=1)`;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
  return `${(m * 100).toFixed(2)} ± ${(sd * 100).toFixed(2)}${xs.length !== 3 ? ` (n=${xs.length})` : ''}`;
}

export function sweepMarkdown(s: Sweep): string {
  const lines = [
    `Full precision ${(s.fpTop1 * 100).toFixed(2)} %. Top-1 (%), mean ± sample std over seeds (n=3 unless marked); image statistics are means over seeds.`,
    '',
    `| setting | method | ${s.bits.map((b) => b.toUpperCase()).join(' | ')} | feature cosine | Fréchet |`,
    `|---|---|${s.bits.map(() => '---').join('|')}|---|---|`,
  ];
  for (const r of s.rows) {
    lines.push(`| ${r.label} | ${r.method} | ${s.bits.map((b) => cell(r.cells[b])).join(' | ')} | ${r.featureCosine === null ? '—' : r.featureCosine.toFixed(3)} | ${r.frechet === null ? '—' : r.frechet.toFixed(2)} |`);
  }
  return lines.join('\n');
}
