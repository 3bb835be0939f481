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
import { prefixTokens, tokenCount } from '../vit-config';
import { VitModel } from '../vit';
import { synthesize } from '../synth/synthesize';
import { overridesForMethod, resolveSynthesisOptions, SynthesisOptions, SynthMethod } from '../synth/options';
import { bytesDigest, cacheKey, ImageCache } from './image-cache';
import { quantize, calibrateSites } from '../quant/quantize';
import { BitsPreset, normalizedPixelRange, planQuantization, QuantOptions, quantizerForms, ReconstructionOptions } from '../quant/quant-config';
import { ChannelQuantizer, TensorQuantizer } from '../native';
import { classCosine, clsAttentionEntropy, frechetDistance } from './feature-stats';
import { ABLATION, AblationName, ablationSynthesis, SynthesisOverrides } from './ablation';

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
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export interface ImageQuality {
  featureCosine: number;
  frechet: number;
  clsAttentionEntropy: number;
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
  realQualityReference: { featureCosine: number; clsAttentionEntropy: number };
  seconds: number;
}

async function features(model: VitModel, images: Float32Array, n: number, batch = 256): Promise<{ feats: Float32Array; attention: Float32Array[] | null }> {
  const D = model.config.embedDim;
  const per = model.imageLength();
  const feats = new Float32Array(n * D);
  for (let s = 0; s < n; s += batch) {
    const b = Math.min(batch, n - s);
    const out = await model.forward(images.subarray(s * per, (s + b) * per), b, { features: true });
    // The head input; for a distilled DeiT the class-token half.
    const hin = out.features!.length / (b * D);
    for (let i = 0; i < b; i++) feats.set(out.features!.subarray(i * hin * D, i * hin * D + D), (s + i) * D);
  }
  return { feats, attention: null };
}

async function attentionEntropy(model: VitModel, images: Float32Array, n: number): Promise<number> {
  const c = model.config;
  if (!c.classToken) return NaN;
  const m = Math.min(n, 64);
  const out = await model.forward(images.subarray(0, m * model.imageLength()), m, { attention: true });
  return clsAttentionEntropy(out.attention!, m, c.numHeads, tokenCount(c), prefixTokens(c));
}

function scalesOf(q: TensorQuantizer | ChannelQuantizer): number {
  if ('scale' in q) return q.scale;
  let s = 0;
  for (const v of q.scales) s += v;
  return s / q.scales.length;
}

export async function compare(fp: VitModel, evalSet: LabelledImages, real: LabelledImages, o: CompareOptions): Promise<CompareResult> {
  const t0 = Date.now();
  const log = o.log ?? (() => undefined);
  const K = fp.config.numClasses;
  const D = fp.config.embedDim;
  const check = () => {
    if (o.signal?.aborted) throw new SpdfqError('E_CANCELLED', 'comparison cancelled');
  };
  const fpEval = await evaluate(async (x, b) => (await fp.forward(x, b)).logits, evalSet, K);
  log(`full precision: ${(fpEval.top1 * 100).toFixed(2)}%`);
  // Reference statistics of real images: features of the evaluation set (the "real" side
  // of the distances) and activation ranges calibrated on real calibration images.
  const evalFeats = (await features(fp, evalSet.images, evalSet.count)).feats;
  const rangePlan = planQuantization(fp.config, { bits: o.ablationBits, reconstruction: false });
  const realRanges = new Map<string, number>();
  const realCalibN = Math.min(o.images, real.count);
  const realCalib = real.images.subarray(0, realCalibN * fp.imageLength());
  for (const r of await calibrateSites(fp, realCalib, realCalibN, rangePlan)) realRanges.set(r.site.key, scalesOf(r.quantizer));
  const realFeats = (await features(fp, realCalib, realCalibN)).feats;
  const realQualityReference = {
    featureCosine: classCosine(realFeats, real.labels.subarray(0, realCalibN), evalFeats, evalSet.labels, D),
    clsAttentionEntropy: await attentionEntropy(fp, realCalib, realCalibN),
  };

  o.quantizerForms = Object.fromEntries([...new Set([...o.bits, o.ablationBits])].map((b) => [b, quantizerForms(planQuantization(fp.config, { ...o.quant, bits: b }))]));
  const result: CompareResult = { fpTop1: fpEval.top1, cells: {}, cellSeeds: {}, ablation: {}, ablationSeeds: {}, quality: {}, qualitySeeds: {}, realQualityReference, seconds: 0 };

  const cache = o.cacheDir ? new ImageCache(o.cacheDir) : null;
  let digest: string | null = null;
  const weightsDigest = async () => (digest ??= bytesDigest(await fp.exclusive(async () => fp.nativeHandle().getParams())));
  const calibrationImages = async (method: SynthMethod, seed: number, extra: Partial<SynthesisOptions> = {}): Promise<{ images: Float32Array; targets: Int32Array }> => {
    if (method === 'real') {
      // A different real subset per seed (the evaluation set is never used for calibration).
      const start = (seed * o.images) % Math.max(1, real.count - o.images + 1);
      const per = fp.imageLength();
      return { images: real.images.slice(start * per, (start + o.images) * per), targets: real.labels.slice(start, start + o.images) };
    }
    const options: SynthesisOptions = { ...overridesForMethod(method, o.synthesis ?? {}), method, images: o.images, iters: o.iters, seed, preprocess: o.preprocess, ...extra };
    const key = cache ? cacheKey({ weights: await weightsDigest(), threads: o.threads ?? null, options: resolveSynthesisOptions(fp.config, options) }) : '';
    const hit = cache?.get(key, o.images, fp.imageLength());
    if (hit) {
      log(`${method} seed ${seed}: images from the cache (${key})`);
      return hit;
    }
    const r = await synthesize(fp, { ...options, signal: o.signal });
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

  for (const method of o.methods) {
    result.cells[method] = {};
    result.cellSeeds![method] = {};
    result.quality[method] = [];
    result.qualitySeeds![method] = [];
    for (const seed of o.seeds) {
      check();
      const { images, targets } = await calibrationImages(method, seed);
      const f = (await features(fp, images, o.images)).feats;
      const ranges = await calibrateSites(fp, images, o.images, rangePlan);
      let rangeErr = 0;
      for (const r of ranges) rangeErr += Math.abs(Math.log(scalesOf(r.quantizer) / realRanges.get(r.site.key)!));
      result.quality[method].push({
        featureCosine: classCosine(f, targets, evalFeats, evalSet.labels, D),
        frechet: frechetDistance(f, o.images, evalFeats, evalSet.count, D),
        clsAttentionEntropy: await attentionEntropy(fp, images, o.images),
        rangeError: rangeErr / ranges.length,
      });
      result.qualitySeeds![method].push(seed);
      for (const bits of o.bits) {
        check();
        const top1 = await quantTop1(images, bits, seed);
        (result.cells[method][bits] ??= []).push(top1);
        (result.cellSeeds![method][bits] ??= []).push(seed);
        log(`${method} seed ${seed} ${bits}: ${(top1 * 100).toFixed(2)}%`);
      }
    }
  }
  if (o.ablation) {
    for (const v of ABLATION.filter((x) => !o.ablationVariants || o.ablationVariants.includes(x.name))) {
      result.ablation[v.name] = [];
      result.ablationSeeds![v.name] = [];
      for (const seed of o.seeds) {
        check();
        const { images } = await calibrationImages('spdfq', seed, ablationSynthesis(o.synthesis, v));
        const top1 = await quantTop1(images, o.ablationBits, seed);
        result.ablation[v.name].push(top1);
        result.ablationSeeds![v.name].push(seed);
        log(`ablation ${v.name} seed ${seed} ${o.ablationBits}: ${(top1 * 100).toFixed(2)}%`);
      }
    }
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

const METHOD_LABEL: Record<string, string> = {
  noise: 'Gaussian noise',
  inversion: 'CE + TV inversion',
  psaq: 'PSAQ-ViT',
  spdfq: 'SPDFQ',
  real: 'real images',
};

/** The tables as Markdown. */
export function compareMarkdown(r: CompareResult, o: Pick<CompareOptions, 'seeds' | 'bits' | 'methods' | 'ablationBits'>): string {
  const lines: string[] = [];
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
    lines.push(`Image quality (mean over seeds; the "real images" reference: cosine ${r.realQualityReference.featureCosine.toFixed(3)}, class-token attention entropy ${r.realQualityReference.clsAttentionEntropy.toFixed(3)} nats):`);
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
