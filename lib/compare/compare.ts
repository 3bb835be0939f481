// `compare`: the paper's table on our models. Rows: full precision, Gaussian noise, a
// plain cross-entropy + TV inversion, PSAQ-ViT, SPDFQ, real images; columns: bit widths;
// cells: top-1 mean ± std over seeds. Plus the SPDFQ ablation (APA, MSR, SL on/off) and,
// per method, how close its images are to real ones (feature cosine similarity and
// Fréchet distance, class-token attention entropy, activation-range error against
// real-data calibration). Every method's images go through the same quantizer and the
// same evaluation, seeds fixed, mean ± std over seeds (the fair-comparison protocol of the
// data-free ViT quantization papers; single runs of PSAQ-ViT vary by up to ~4 points).

import { SpdfqError } from '../errors';
import { LabelledImages } from '../data/labelled-images';
import { evaluate } from '../eval/evaluate';
import { synthesize } from '../synth/synthesize';
import { overridesForMethod, resolveSynthesisOptions, SynthesisOptions, SynthMethod } from '../synth/options';
import { synthModelShape } from '../synth/model-shape';
import { bytesDigest, cacheKey, ImageCache } from './image-cache';
import { quantize, calibrateSites } from '../quant/quantize';
import { BitsPreset, normalizedPixelRange, QuantOptions, quantizerForms, ReconstructionOptions } from '../quant/quant-config';
import { ChannelQuantizer, TensorQuantizer } from '../native';
import { classCosine, frechetDistance } from './feature-stats';
import { logitsOf } from '../model-kind';
import {
  Architecture, architectureOf, attentionEntropy, checkCompareOptions, CompareModel, explicitCompareBackEnd, headFeatures, imageLength, planFor,
} from './compare-model';
import { ABLATION, AblationName, ablationSynthesis, SynthesisOverrides } from './ablation';
import { createHash } from 'crypto';
import type { Shard } from '../shard';
import { CellStore } from './cell-store';
import { cellName, shardCells, TableCell } from './cells';
import { PROTOCOL_KEYS, protocolValue } from './protocol';

export interface CompareOptions {
  methods: SynthMethod[];
  bits: BitsPreset[];
  seeds: number[];
  images: number;
  iters?: number;
  reconstruction: ReconstructionOptions | false;
  ablation: boolean;
  ablationBits: BitsPreset;
  /** The ablation variants to run (names from ABLATION); default all eight. A subset lets one
   *  table's variants be split over processes and joined with `compare --merge`. */
  ablationVariants?: AblationName[];
  /** Synthesis options applied to every synthesized row and ablation variant (e.g. the TV
   *  prior or the learning rate), for tuning through documented options. Default none. */
  synthesis?: SynthesisOverrides;
  /** Real images for the 'real' row and the image-quality references (not the eval set). */
  realPath: string;
  preprocess: { mean: number[]; std: number[] };
  threads?: number;
  /** Quantization options for every cell (back-end settings: calibration order, learned
   *  rounding, QDrop), over the plan's defaults. Default none. */
  quant?: Omit<QuantOptions, 'bits' | 'reconstruction'> & { reconstruction?: ReconstructionOptions };
  /** The quantizer forms at each bit width (quantizerForms), recorded by compare. */
  quantizerForms?: Record<string, string>;
  /** Keep synthesized images in this folder and reuse them when the same model, method,
   *  seed and options come again (sweeps over quantization settings, resumed runs). */
  cacheDir?: string;
  /** Where synthesis ran, when not on the CPU engine ('cuda:N'): recorded, and part of the
   *  image cache's key (GPU and CPU images differ in their last bits). */
  device?: string;
  /** Only this shard's cells (lib/compare/cells.ts deals them); `compare --merge` joins
   *  the shards' results. Default: the whole table. */
  shard?: Shard;
  /** The model's architecture, recorded by compare: a 'swin' table has no class-token
   *  attention entropy, and was made without block reconstruction where `reconstruction`
   *  is false — as every Swin record made before Swin reconstruction existed
   *  (docs/swin.md, "Stage: compare"). */
  architecture?: Architecture;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export interface ImageQuality {
  featureCosine: number;
  frechet: number;
  /** null where the model has no class token (a Swin): absent, not estimated. */
  clsAttentionEntropy: number | null;
  /** Mean |log(scale_method / scale_real)| over the activation sites at the given bits. */
  rangeError: number;
}

export interface CompareResult {
  fpTop1: number;
  /** cells[method][bits] = top-1 per seed */
  cells: Record<string, Record<string, number[]>>;
  /** The seed of each value in cells (absent in older files: the options' seeds). */
  cellSeeds?: Record<string, Record<string, number[]>>;
  ablation: Record<string, number[]>;
  ablationSeeds?: Record<string, number[]>;
  quality: Record<string, ImageQuality[]>;
  qualitySeeds?: Record<string, number[]>;
  realQualityReference: { featureCosine: number; clsAttentionEntropy: number | null };
  seconds: number;
}

function scalesOf(q: TensorQuantizer | ChannelQuantizer): number {
  if ('scale' in q) return q.scale;
  let s = 0;
  for (const v of q.scales) s += v;
  return s / q.scales.length;
}

/** One method at one seed: its images' statistics and top-1 at each bit width. */
interface RowCell {
  quality: ImageQuality;
  top1: Record<string, number>;
}

/** A row cell's values into the table (seeds come in increasing order per row). */
function addRow(result: CompareResult, bits: BitsPreset[], method: SynthMethod, seed: number, { quality, top1 }: RowCell): void {
  (result.quality[method] ??= []).push(quality);
  (result.qualitySeeds![method] ??= []).push(seed);
  for (const b of bits) {
    ((result.cells[method] ??= {})[b] ??= []).push(top1[b]);
    ((result.cellSeeds![method] ??= {})[b] ??= []).push(seed);
  }
}

function addAblation(result: CompareResult, variant: AblationName, seed: number, top1: number): void {
  (result.ablation[variant] ??= []).push(top1);
  (result.ablationSeeds![variant] ??= []).push(seed);
}

/** What a finished cell's values depend on besides the cell itself (CellStore refuses a
 *  cell measured under another): the model and evaluation set (their full-precision top-1)
 *  and the protocol. */
function cellFingerprint(o: CompareOptions, fpTop1: number): string {
  const protocol = Object.fromEntries(PROTOCOL_KEYS.map((k) => [k, protocolValue({ options: o }, k)]));
  const canonical = JSON.stringify({ fpTop1, protocol, quantizerForms: o.quantizerForms, realPath: o.realPath, device: o.device ?? 'cpu' });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/** The table: every cell of `o`, or a shard's share of them (o.shard). With `store`, cells
 *  finished by an earlier run are read from it and new ones written to it. Synthesis runs
 *  on `synthModel` (a GPU copy of fp), everything else on fp. A Swin (compare-model.ts)
 *  is refused before any work on options it cannot take (synthesis off the CPU). */
export async function compare(fp: CompareModel, evalSet: LabelledImages, real: LabelledImages, o: CompareOptions, store?: CellStore, synthModel: CompareModel = fp): Promise<CompareResult> {
  const t0 = Date.now();
  const log = o.log ?? (() => undefined);
  checkCompareOptions(fp, o);
  o.architecture = architectureOf(fp);
  const K = fp.config.numClasses;
  const per = imageLength(fp);
  const check = () => {
    if (o.signal?.aborted) throw new SpdfqError('E_CANCELLED', 'comparison cancelled');
  };
  const fpEval = await evaluate(logitsOf(fp), evalSet, K);
  log(`full precision: ${(fpEval.top1 * 100).toFixed(2)}%`);
  // Reference statistics of real images: features of the evaluation set (the "real" side
  // of the distances) and activation ranges calibrated on real calibration images.
  const { feats: evalFeats, dim: D } = await headFeatures(fp, evalSet.images, evalSet.count);
  const rangePlan = planFor(fp, { bits: o.ablationBits, reconstruction: false });
  const realRanges = new Map<string, number>();
  const realCalibN = Math.min(o.images, real.count);
  const realCalib = real.images.subarray(0, realCalibN * per);
  for (const r of await calibrateSites(fp, realCalib, realCalibN, rangePlan)) realRanges.set(r.site.key, scalesOf(r.quantizer));
  const realFeats = (await headFeatures(fp, realCalib, realCalibN)).feats;
  const realQualityReference = {
    featureCosine: classCosine(realFeats, real.labels.subarray(0, realCalibN), evalFeats, evalSet.labels, D),
    clsAttentionEntropy: await attentionEntropy(fp, realCalib, realCalibN),
  };

  o.quant = explicitCompareBackEnd(fp, o.quant ?? {}, o.reconstruction);
  o.quantizerForms = Object.fromEntries([...new Set([...o.bits, o.ablationBits])].map((b) => [b, quantizerForms(planFor(fp, { ...o.quant, bits: b }))]));
  const result: CompareResult = { fpTop1: fpEval.top1, cells: {}, cellSeeds: {}, ablation: {}, ablationSeeds: {}, quality: {}, qualitySeeds: {}, realQualityReference, seconds: 0 };

  const cache = o.cacheDir ? new ImageCache(o.cacheDir) : null;
  let digest: string | null = null;
  const weightsDigest = async () => (digest ??= bytesDigest(await fp.exclusive(async () => fp.nativeHandle().getParams())));
  const calibrationImages = async (method: SynthMethod, seed: number, extra: Partial<SynthesisOptions> = {}): Promise<{ images: Float32Array; targets: Int32Array }> => {
    if (method === 'real') {
      // A different real subset per seed (the evaluation set is never used for calibration).
      const start = (seed * o.images) % Math.max(1, real.count - o.images + 1);
      return { images: real.images.slice(start * per, (start + o.images) * per), targets: real.labels.slice(start, start + o.images) };
    }
    const options: SynthesisOptions = { ...overridesForMethod(method, o.synthesis ?? {}), method, images: o.images, iters: o.iters, seed, preprocess: o.preprocess, ...extra };
    const key = cache ? cacheKey({ weights: await weightsDigest(), threads: o.threads ?? null, options: resolveSynthesisOptions(synthModelShape(fp.config), options), ...(o.device ? { device: o.device } : {}) }) : '';
    const hit = cache?.get(key, o.images, per);
    if (hit) {
      log(`${method} seed ${seed}: images from the cache (${key})`);
      return hit;
    }
    const r = await synthesize(synthModel, { ...options, signal: o.signal });
    cache?.put(key, { images: r.images, targets: r.targets });
    return { images: r.images, targets: r.targets };
  };

  const quantTop1 = async (images: Float32Array, bits: BitsPreset, seed: number): Promise<number> => {
    const q = await quantize(fp, images, o.images, {
      ...o.quant,
      bits,
      inputRange: normalizedPixelRange(o.preprocess),
      threads: o.threads,
      reconstruction: o.reconstruction === false ? false : { ...o.quant?.reconstruction, ...o.reconstruction, seed },
      signal: o.signal,
    });
    try {
      return (await evaluate((x, b) => q.forward(x, b), evalSet, K)).top1;
    } finally {
      await q.dispose();
    }
  };

  // The table's cells (a shard's share of them), each taken from `store` when a earlier run
  // finished it.
  const fingerprint = store ? cellFingerprint(o, fpEval.top1) : '';
  const stored = async <T>(cell: TableCell, measure: () => Promise<T>): Promise<T> => {
    const name = cellName(cell);
    const done = store?.get<T>(name, fingerprint);
    if (done !== undefined) {
      log(`${name}: finished earlier (${store!.dir})`);
      return done;
    }
    const value = await measure();
    store?.put(name, fingerprint, value);
    return value;
  };
  const measureRow = async (method: SynthMethod, seed: number): Promise<RowCell> => {
    const { images, targets } = await calibrationImages(method, seed);
    const f = (await headFeatures(fp, images, o.images)).feats;
    const ranges = await calibrateSites(fp, images, o.images, rangePlan);
    let rangeErr = 0;
    for (const r of ranges) rangeErr += Math.abs(Math.log(scalesOf(r.quantizer) / realRanges.get(r.site.key)!));
    const quality: ImageQuality = {
      featureCosine: classCosine(f, targets, evalFeats, evalSet.labels, D),
      frechet: frechetDistance(f, o.images, evalFeats, evalSet.count, D),
      clsAttentionEntropy: await attentionEntropy(fp, images, o.images),
      rangeError: rangeErr / ranges.length,
    };
    const top1: Record<string, number> = {};
    for (const bits of o.bits) {
      check();
      top1[bits] = await quantTop1(images, bits, seed);
      log(`${method} seed ${seed} ${bits}: ${(top1[bits] * 100).toFixed(2)}%`);
    }
    return { quality, top1 };
  };
  const measureAblation = async (variant: AblationName, seed: number): Promise<number> => {
    const { images } = await calibrationImages('spdfq', seed, ablationSynthesis(o.synthesis, ABLATION.find((v) => v.name === variant)!));
    const top1 = await quantTop1(images, o.ablationBits, seed);
    log(`ablation ${variant} seed ${seed} ${o.ablationBits}: ${(top1 * 100).toFixed(2)}%`);
    return top1;
  };

  for (const cell of shardCells(o)) {
    check();
    if (cell.kind === 'row') addRow(result, o.bits, cell.method, cell.seed, await stored(cell, () => measureRow(cell.method, cell.seed)));
    else addAblation(result, cell.variant, cell.seed, await stored(cell, () => measureAblation(cell.variant, cell.seed)));
  }
  result.seconds = (Date.now() - t0) / 1000;
  return result;
}

/** Mean ± sample std in percent; `(n=k)` marks a cell with fewer seeds than the table. */
function meanStd(xs: number[], tableSeeds: number): string {
  if (xs.length === 0) return '—';
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  if (xs.length === 1) return `${(m * 100).toFixed(2)}${tableSeeds > 1 ? ' (n=1)' : ''}`;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
  return `${(m * 100).toFixed(2)} ± ${(sd * 100).toFixed(2)}${xs.length < tableSeeds ? ` (n=${xs.length})` : ''}`;
}

/** The mean of a statistic over seeds; '—' where it is undefined (NaN, which results.json
 *  stores as null: e.g. the class-conditional cosine of noise, which has no classes). */
function statCell(xs: (number | null)[], digits: number): string {
  if (xs.some((x) => x === null || Number.isNaN(x))) return '—';
  return ((xs as number[]).reduce((a, b) => a + b, 0) / xs.length).toFixed(digits);
}

/** What a Swin's table lacks, said above it (docs/swin.md, "Stage: compare"): the
 *  attention entropy always; block reconstruction when the record ran without it (every
 *  record made before Swin reconstruction existed says reconstruction: false). */
export const SWIN_COMPARE_NOTE =
  'no class-token attention entropy (a Swin has no class token, it attends per window): shown as —';
export const SWIN_NO_RECONSTRUCTION_NOTE = 'quantized without block reconstruction (every cell is calibration and reparameterization only)';

const METHOD_LABEL: Record<string, string> = {
  noise: 'Gaussian noise',
  inversion: 'CE + TV inversion',
  psaq: 'PSAQ-ViT',
  spdfq: 'SPDFQ',
  real: 'real images',
};

/** The tables as Markdown. */
export function compareMarkdown(r: CompareResult, o: Pick<CompareOptions, 'seeds' | 'bits' | 'methods' | 'ablationBits' | 'architecture'> & Partial<Pick<CompareOptions, 'reconstruction'>>): string {
  const lines: string[] = [];
  if (o.architecture === 'swin') {
    lines.push(`Swin: ${o.reconstruction === false ? `${SWIN_NO_RECONSTRUCTION_NOTE}; ` : ''}${SWIN_COMPARE_NOTE}.`);
    lines.push('');
  }
  const n = o.seeds.length;
  // An ablation-only run (`--methods=`) has no method rows: its tables start at the ablation.
  if (o.methods.length > 0 && o.bits.length > 0) {
    lines.push(`Top-1 (%), mean ± sample std over seeds ${o.seeds.join(', ')}.`);
    lines.push('');
    lines.push(`| method | ${o.bits.map((b) => b.toUpperCase()).join(' | ')} |`);
    lines.push(`|---|${o.bits.map(() => '---').join('|')}|`);
    lines.push(`| full precision | ${o.bits.map(() => (r.fpTop1 * 100).toFixed(2)).join(' | ')} |`);
    for (const m of o.methods) lines.push(`| ${METHOD_LABEL[m] ?? m} | ${o.bits.map((b) => meanStd(r.cells[m]?.[b] ?? [], n)).join(' | ')} |`);
    lines.push('');
    const ref = r.realQualityReference;
    lines.push(`Image quality (mean over seeds; the "real images" reference: cosine ${ref.featureCosine.toFixed(3)}, class-token attention entropy ${statCell([ref.clsAttentionEntropy], 3)} nats):`);
    lines.push('');
    lines.push('| method | feature cosine to real (same class) | Fréchet distance to real features | class-token attention entropy (nats) | activation-range error vs real calibration |');
    lines.push('|---|---|---|---|---|');
    for (const m of o.methods) {
      const q = r.quality[m] ?? [];
      if (q.length === 0) continue;
      lines.push(
        `| ${METHOD_LABEL[m] ?? m} | ${statCell(q.map((x) => x.featureCosine), 3)} | ${statCell(q.map((x) => x.frechet), 2)} | ${statCell(q.map((x) => x.clsAttentionEntropy), 3)} | ${statCell(q.map((x) => x.rangeError), 3)} |`,
      );
    }
  } else {
    lines.push(`Full precision: ${(r.fpTop1 * 100).toFixed(2)} % top-1; seeds ${o.seeds.join(', ')}.`);
  }
  if (Object.keys(r.ablation).length > 0) {
    lines.push('');
    lines.push(`SPDFQ ablation at ${o.ablationBits.toUpperCase()} (top-1 %, mean ± std over seeds):`);
    lines.push('');
    lines.push('| components | top-1 |');
    lines.push('|---|---|');
    for (const [name, xs] of Object.entries(r.ablation)) lines.push(`| ${name} | ${meanStd(xs, n)} |`);
  }
  return lines.join('\n');
}
