// Synthesis options: the user-facing shape, every default with its source, validation that
// says what was expected and what was received, and the translation into the plain native
// config. Sources: [paper] the SPDFQ paper, [summary] detailed third-party summaries of it,
// [psaq] PSAQ-ViT's official code (zkkli/PSAQ-ViT generate_data.py), [ours] our choice
// where the sources are silent. docs/synthesis.md lists them all.

import { SpdfqError } from '../errors';
import { VitConfig } from '../vit-config';
import { NativeSynthConfig } from './native-synth';

export type SynthMethod = 'spdfq' | 'psaq' | 'inversion' | 'noise' | 'real';
export const SYNTH_METHODS: readonly SynthMethod[] = ['spdfq', 'psaq', 'inversion', 'noise', 'real'];

/** Attention Priors Alignment. */
export interface ApaOptions {
  enabled?: boolean;
  /** Weight α1 of L_APA, or 'auto': α1·L_APA = L_cls at step 0 [ours; the summary tunes it in [1, 1e5]]. */
  alpha?: number | 'auto';
  /** K_APA, the most mixture components per prior: 5 [summary]. */
  components?: number;
  /** Smallest per-component std, patches: 0.5 [ours]. */
  stdMin?: number;
  /** Largest per-component std as a fraction of the grid side: 1/3 [ours]. */
  stdMaxFraction?: number;
  /** Blocks aligned, 1-based: 'deep-half' = ⌈L/2⌉…L [summary], 'all', or a list. */
  blocks?: 'deep-half' | 'all' | number[];
  /** Weight each block's MSE by l/L: true [summary]. */
  depthWeight?: boolean;
  /** Attention row aligned: 'auto' = the class token's for class-token pooling, else the mean over queries [summary]. */
  query?: 'auto' | 'class' | 'mean';
  /** A separate prior per aligned block (else one per image and head for all blocks): false [ours]. */
  priorPerBlock?: boolean;
  /** How the attention map is compared with the prior: 'mse' [summary], 'relative-mse'
   *  (MSE over the prior's mean square) or 'kl' (KL(prior ‖ attention)); the last two do
   *  not shrink as 1/N² with the token count [ours]. */
  loss?: ApaLossForm;
}

export type ApaLossForm = 'mse' | 'relative-mse' | 'kl';
export const APA_LOSS_FORMS: readonly ApaLossForm[] = ['mse', 'relative-mse', 'kl'];

/** Multi-Semantic Reinforcement. */
export interface MsrOptions {
  enabled?: boolean;
  /** K_MSR, the most regions per image per step: 4 [summary]. */
  maxRegions?: number;
  /** Regions lie in distinct cells of a grid × grid split: 2 [ours]. */
  grid?: number;
  /** Box side as a fraction of the cell side, U[boxMin, boxMax]: 0.5, 1.0 [ours]. */
  boxMin?: number;
  boxMax?: number;
  /** Mirror each resized region at random: true [ours]. */
  flip?: boolean;
  /** 'fixed': one class per (image, cell) for the whole run; 'resample': new classes each step. 'fixed' [ours]. */
  regionClasses?: 'fixed' | 'resample';
}

/** Soft-label Learning. */
export interface SlOptions {
  enabled?: boolean;
  /** Z_c ~ U(logitMin, logitMax) at the relevant classes: 5, 10 [summary]. */
  logitMin?: number;
  logitMax?: number;
}

/** Total-variation image prior. */
export interface TvOptions {
  /** 'l2': Σ of the four directional difference norms over the batch [psaq; default with a target]; 'l1': Σ of their mean |Δ| [DeepInversion; ours, default when TV is minimized]; 'none'. */
  form?: 'l2' | 'l1' | 'none';
  /** Weight: 0.05 [summary, psaq]. */
  weight?: number;
  /** PSAQ-ViT's |TV − v|, v ~ U(lo, hi) for 32 images of 224×224×3 [psaq], or null (minimize TV). */
  target?: [number, number] | null;
}

/** PSAQ-ViT's patch-similarity entropy. */
export interface PseOptions {
  enabled?: boolean;
  /** Weight: 1 [psaq]. */
  weight?: number;
  /** KDE bandwidth: 0.01 [psaq]. */
  bandwidth?: number;
  /** KDE evaluation points: 10 [psaq]. */
  points?: number;
  /** Blocks, 1-based, or 'all' [psaq]. */
  blocks?: 'all' | number[];
}

/** Real images as the calibration set (the upper reference). */
export interface RealImageOptions {
  /** A folder of PNG files (class subfolders give labels), or an IDX images file (.gz ok). */
  path: string;
  /** IDX labels file for an IDX images file (optional). */
  labels?: string;
  /** Shuffle the candidates with the seed before taking `images` of them: true [ours]. */
  shuffle?: boolean;
  /** 'stretch' to the input size, or 'center-crop' after resizing the short side to size/cropPct: 'stretch' [ours]. */
  resize?: 'stretch' | 'center-crop';
  /** Crop fraction for 'center-crop': 0.875 [timm DeiT eval]. */
  cropPct?: number;
}

export interface Preprocess {
  /** Per-channel mean and std of the model's input normalization, on pixels in [0, 1]. */
  mean: number[];
  std: number[];
}

export interface SynthesisProgress {
  step: number;
  totalSteps: number;
  round: number;
  lr: number;
  alpha: number;
  losses: { total: number; apa: number; cls: number; tv: number; pse: number; targetProb: number };
  imagesPerSecond: number;
  seconds: number;
  /** Seconds left at the mean speed so far. */
  etaSeconds: number;
}

export interface SynthesisOptions {
  /** 'spdfq' (default), 'psaq', 'inversion' (hard-label CE + TV), 'noise', 'real'. */
  method?: SynthMethod;
  /** Number of images: 32 [summary]. */
  images?: number;
  /** Total iterations over all rounds: 1000 [summary; psaq: 2 × 500]. */
  iters?: number;
  /** Optimization rounds (each its own cosine schedule; Adam carries over): spdfq/inversion 1 [ours], psaq 2 [psaq]. */
  rounds?: number;
  /** Warm-up steps per round: 100 [psaq], at most 20% of a round for short runs [ours]. */
  warmupIters?: number;
  /** Largest roll per round as a fraction of the image side: 15/224 [psaq round 1, scaled]; psaq: 15/224, 30/224. */
  rollFractions?: number[];
  /** Seed of every random draw: 0 [ours]. */
  seed?: number;
  /** Adam base learning rate: spdfq/inversion 0.25 [ours, psaq's Swin value], psaq 0.20 [psaq, DeiT]. */
  lr?: number;
  /** Adam betas: (0.5, 0.9) [psaq]. */
  betas?: [number, number];
  /** Adam eps: 1e-8 [psaq]. */
  adamEps?: number;
  /** Std of the Gaussian initialization in normalized space: 1 [summary, psaq]. */
  initStd?: number;
  /** Random horizontal flip of the batch each step: true [psaq]. */
  flip?: boolean;
  /** Input normalization; default ImageNet's for 3 channels [timm DeiT]; required otherwise. */
  preprocess?: Preprocess;
  /** Each image's own class; default drawn with the seed. */
  targets?: ArrayLike<number>;
  /** How targets are drawn: 'uniform' [psaq] or 'balanced' (round-robin, shuffled). */
  targetSampling?: 'uniform' | 'balanced';
  /** Weight of the classification term (soft or hard CE): 1.0 [summary, psaq]. */
  ceWeight?: number;
  apa?: boolean | ApaOptions;
  msr?: boolean | MsrOptions;
  sl?: boolean | SlOptions;
  tv?: TvOptions;
  pse?: boolean | PseOptions;
  /** Working memory bound for the loop (micro-batches keep under it): 4 GiB [ours]. */
  memoryBudgetBytes?: number;
  /** For method 'real'. */
  real?: RealImageOptions;
  signal?: AbortSignal;
  onProgress?: (p: SynthesisProgress) => void;
}

/** Every option resolved (JSON-able; recorded beside the outputs). */
export interface ResolvedSynthesisOptions {
  method: SynthMethod;
  images: number;
  iters: number;
  rounds: number;
  warmupIters: number;
  rollFractions: number[];
  seed: number;
  lr: number;
  betas: [number, number];
  adamEps: number;
  initStd: number;
  flip: boolean;
  preprocess: Preprocess;
  targets: number[] | null;
  targetSampling: 'uniform' | 'balanced';
  ceWeight: number;
  apa: Required<Omit<ApaOptions, 'blocks' | 'query'>> & { blocks: number[]; query: 'class' | 'mean' };
  msr: Required<MsrOptions>;
  sl: Required<SlOptions>;
  tv: { form: 'l2' | 'l1' | 'none'; weight: number; target: [number, number] | null };
  pse: Required<Omit<PseOptions, 'blocks'>> & { blocks: number[] };
  memoryBudgetBytes: number;
  real: Required<Omit<RealImageOptions, 'labels'>> & { labels: string | null } | null;
}

export const IMAGENET_PREPROCESS: Preprocess = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
/** PSAQ-ViT's TV target is for this many values (32 images of 224×224×3). */
export const PSAQ_TV_REFERENCE_ELEMENTS = 32 * 3 * 224 * 224;
export const DEFAULT_MEMORY_BUDGET = 4 * 2 ** 30;
/** Largest APA weight α1 accepted: a sanity bound far above the summary's tuning range [1, 1e5]. */
export const APA_ALPHA_MAX = 1e12;

function bad(field: string, expected: string, received: unknown): never {
  const shown = typeof received === 'string' ? `'${received}'` : Array.isArray(received) ? `[${received.join(', ')}]` : String(received);
  throw new SpdfqError('E_CONFIG', `synthesis option ${field}: expected ${expected}, received ${shown}`);
}
function int(field: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) bad(field, `an integer in [${lo}, ${hi}]`, v);
  return v;
}
function real(field: string, v: unknown, lo: number, hi: number, open = false): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi || (open && v === lo)) {
    bad(field, `a number in ${open ? '(' : '['}${lo}, ${hi}]`, v);
  }
  return v;
}
function bool(field: string, v: unknown): boolean {
  if (typeof v !== 'boolean') bad(field, 'true or false', v);
  return v;
}
function oneOf<T extends string>(field: string, v: unknown, options: readonly T[]): T {
  if (typeof v !== 'string' || !(options as readonly string[]).includes(v)) bad(field, `one of ${options.map((o) => `'${o}'`).join(', ')}`, v);
  return v as T;
}
/** `true`/`false` toggles a part with its defaults; an object sets fields (enabled defaults to true). */
function part<T extends { enabled?: boolean }>(field: string, v: unknown, defaultOn: boolean): { on: boolean; o: T } {
  if (v === undefined) return { on: defaultOn, o: {} as T };
  if (typeof v === 'boolean') return { on: v, o: {} as T };
  if (v === null || typeof v !== 'object' || Array.isArray(v)) bad(field, 'true, false or an options object', v);
  const o = v as T;
  return { on: o.enabled === undefined ? true : bool(`${field}.enabled`, o.enabled), o };
}
function blocksOf(field: string, v: unknown, depth: number, preset: Record<string, number[]>): number[] {
  if (typeof v === 'string') {
    if (!(v in preset)) bad(field, `one of ${Object.keys(preset).map((k) => `'${k}'`).join(', ')} or a list of 1-based block numbers`, v);
    return preset[v];
  }
  if (!Array.isArray(v) || v.length === 0) bad(field, `a non-empty list of 1-based block numbers in [1, ${depth}]`, v);
  const out = v.map((b, i) => int(`${field}[${i}]`, b, 1, depth));
  if (new Set(out).size !== out.length) bad(field, 'distinct block numbers', v);
  return out.sort((a, b) => a - b);
}
function known(field: string, o: object, keys: readonly string[]): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) bad(`${field}.${k}`, `one of the known options (${keys.join(', ')})`, 'an unknown option');
}

const TOP_KEYS = [
  'method', 'images', 'iters', 'rounds', 'warmupIters', 'rollFractions', 'seed', 'lr', 'betas', 'adamEps', 'initStd', 'flip',
  'preprocess', 'targets', 'targetSampling', 'ceWeight', 'apa', 'msr', 'sl', 'tv', 'pse', 'memoryBudgetBytes', 'real',
  'signal', 'onProgress',
] as const;

/** Deeper half of the blocks, 1-based: ⌈L/2⌉ … L ([summary] l = L/2 … L; ⌈⌉ for odd L [ours]). */
export function deepHalfBlocks(depth: number): number[] {
  const first = Math.max(1, Math.ceil(depth / 2));
  return Array.from({ length: depth - first + 1 }, (_, i) => first + i);
}

/** The components each method runs with by default: SPDFQ's three, PSAQ-ViT's entropy. */
export function methodComponents(method: SynthMethod): { apa: boolean; msr: boolean; sl: boolean; pse: boolean } {
  return { apa: method === 'spdfq', msr: method === 'spdfq', sl: method === 'spdfq', pse: method === 'psaq' };
}

/** Settings applied to several methods at once (compare's overrides): a component given as
 *  an object adjusts that component where the method runs it, without switching it on
 *  where the method does not (an `apa: { alpha }` override must not add APA to PSAQ-ViT). */
export function overridesForMethod<T extends Partial<SynthesisOptions>>(method: SynthMethod, overrides: T): T {
  const on = methodComponents(method);
  const out: Partial<SynthesisOptions> = { ...overrides };
  for (const k of ['apa', 'msr', 'sl', 'pse'] as const) {
    const v = overrides[k];
    if (v && typeof v === 'object' && (v as { enabled?: boolean }).enabled === undefined) (out as Record<string, unknown>)[k] = { ...v, enabled: on[k] };
  }
  return out as T;
}

/** Fills every default for `options.method` and validates against the model. */
export function resolveSynthesisOptions(model: VitConfig, options: SynthesisOptions = {}): ResolvedSynthesisOptions {
  if (options === null || typeof options !== 'object') bad('(options)', 'an object', options);
  known('(options)', options, TOP_KEYS);
  const method = oneOf('method', options.method ?? 'spdfq', SYNTH_METHODS);
  const psaq = method === 'psaq';
  const spdfq = method === 'spdfq';
  const on = methodComponents(method);
  const depth = model.depth;

  const images = int('images', options.images ?? 32, 1, 1 << 20);
  const rounds = int('rounds', options.rounds ?? (psaq ? 2 : 1), 1, 100);
  const iters = int('iters', options.iters ?? 1000, 0, 1e7);
  const perRound = Math.floor(iters / rounds);
  const warmupIters = int('warmupIters', options.warmupIters ?? Math.min(100, Math.floor(0.2 * perRound)), 0, 1e7);
  if (warmupIters > perRound) bad('warmupIters', `at most the iterations of one round (${perRound})`, warmupIters);
  const defaultRoll = psaq ? [15 / 224, 30 / 224] : [15 / 224];
  const rollIn = options.rollFractions ?? Array.from({ length: rounds }, (_, r) => defaultRoll[Math.min(r, defaultRoll.length - 1)]);
  if (!Array.isArray(rollIn) || rollIn.length !== rounds) bad('rollFractions', `one fraction per round (${rounds})`, rollIn);
  const rollFractions = rollIn.map((f, i) => real(`rollFractions[${i}]`, f, 0, 0.99));

  const seed = int('seed', options.seed ?? 0, 0, Number.MAX_SAFE_INTEGER);
  const lr = real('lr', options.lr ?? (psaq ? 0.2 : 0.25), 0, 3e38, true);
  const betasIn = options.betas ?? [0.5, 0.9];
  if (!Array.isArray(betasIn) || betasIn.length !== 2) bad('betas', 'a pair [beta1, beta2]', betasIn);
  const betas: [number, number] = [real('betas[0]', betasIn[0], 0, 0.999999), real('betas[1]', betasIn[1], 0, 0.999999)];
  const adamEps = real('adamEps', options.adamEps ?? 1e-8, 0, 1, true);
  const initStd = real('initStd', options.initStd ?? 1, 0, 1e3);
  const flip = bool('flip', options.flip ?? true);

  const C = model.channels;
  let preprocess: Preprocess;
  if (options.preprocess === undefined) {
    if (C !== 3) bad('preprocess', `the model's input mean and std (${C} channel(s); the ImageNet default only fits 3)`, undefined);
    preprocess = IMAGENET_PREPROCESS;
  } else {
    const p = options.preprocess;
    if (!p || !Array.isArray(p.mean) || !Array.isArray(p.std) || p.mean.length !== C || p.std.length !== C) {
      bad('preprocess', `{ mean, std } with ${C} value(s) each`, JSON.stringify(p));
    }
    preprocess = {
      mean: p.mean.map((m, i) => real(`preprocess.mean[${i}]`, m, -1e3, 1e3)),
      std: p.std.map((s, i) => real(`preprocess.std[${i}]`, s, 0, 1e3, true)),
    };
  }

  let targets: number[] | null = null;
  if (options.targets !== undefined) {
    const t = Array.from(options.targets as ArrayLike<number>);
    if (t.length !== images) bad('targets', `one class per image (${images})`, `${t.length} entries`);
    targets = t.map((c, i) => int(`targets[${i}]`, c, 0, model.numClasses - 1));
  }
  const targetSampling = oneOf('targetSampling', options.targetSampling ?? 'uniform', ['uniform', 'balanced'] as const);
  const ceWeight = real('ceWeight', options.ceWeight ?? 1.0, 0, 1e6);

  // APA
  const a = part<ApaOptions>('apa', options.apa, on.apa);
  known('apa', a.o, ['enabled', 'alpha', 'components', 'stdMin', 'stdMaxFraction', 'blocks', 'depthWeight', 'query', 'priorPerBlock', 'loss']);
  const alphaIn = a.o.alpha ?? 'auto';
  const alpha: number | 'auto' = alphaIn === 'auto' ? 'auto' : real('apa.alpha', alphaIn, 0, APA_ALPHA_MAX, true);
  const query = oneOf('apa.query', a.o.query ?? 'auto', ['auto', 'class', 'mean'] as const);
  const resolvedQuery = query === 'auto' ? (model.pooling === 'token' ? 'class' : 'mean') : query;
  if (a.on && resolvedQuery === 'class' && !model.classToken) bad('apa.query', "'mean' or 'auto' for a model without a class token", query);
  const apa = {
    enabled: a.on,
    alpha,
    components: int('apa.components', a.o.components ?? 5, 1, 64),
    stdMin: real('apa.stdMin', a.o.stdMin ?? 0.5, 0, 1e4, true),
    stdMaxFraction: real('apa.stdMaxFraction', a.o.stdMaxFraction ?? 1 / 3, 0, 10, true),
    blocks: blocksOf('apa.blocks', a.o.blocks ?? 'deep-half', depth, { 'deep-half': deepHalfBlocks(depth), all: Array.from({ length: depth }, (_, i) => i + 1) }),
    depthWeight: bool('apa.depthWeight', a.o.depthWeight ?? true),
    query: resolvedQuery as 'class' | 'mean',
    priorPerBlock: bool('apa.priorPerBlock', a.o.priorPerBlock ?? false),
    loss: oneOf('apa.loss', a.o.loss ?? 'mse', APA_LOSS_FORMS),
  };

  // MSR
  const m = part<MsrOptions>('msr', options.msr, on.msr);
  known('msr', m.o, ['enabled', 'maxRegions', 'grid', 'boxMin', 'boxMax', 'flip', 'regionClasses']);
  const grid = int('msr.grid', m.o.grid ?? 2, 1, Math.min(model.imageHeight, model.imageWidth));
  const msr = {
    enabled: m.on,
    maxRegions: int('msr.maxRegions', m.o.maxRegions ?? Math.min(4, grid * grid), 1, grid * grid),
    grid,
    boxMin: real('msr.boxMin', m.o.boxMin ?? 0.5, 0, 1, true),
    boxMax: real('msr.boxMax', m.o.boxMax ?? 1.0, 0, 1, true),
    flip: bool('msr.flip', m.o.flip ?? true),
    regionClasses: oneOf('msr.regionClasses', m.o.regionClasses ?? 'fixed', ['fixed', 'resample'] as const),
  };
  if (msr.boxMin > msr.boxMax) bad('msr.boxMin', `at most msr.boxMax (${msr.boxMax})`, msr.boxMin);

  // SL
  const s = part<SlOptions>('sl', options.sl, on.sl);
  known('sl', s.o, ['enabled', 'logitMin', 'logitMax']);
  const sl = {
    enabled: s.on,
    logitMin: real('sl.logitMin', s.o.logitMin ?? 5, -1e3, 1e3),
    logitMax: real('sl.logitMax', s.o.logitMax ?? 10, -1e3, 1e3),
  };
  if (sl.logitMin > sl.logitMax) bad('sl.logitMin', `at most sl.logitMax (${sl.logitMax})`, sl.logitMin);

  // TV
  const tvIn = options.tv ?? {};
  if (tvIn === null || typeof tvIn !== 'object') bad('tv', 'an options object', tvIn);
  known('tv', tvIn, ['form', 'weight', 'target']);
  const targetIn = tvIn.target === undefined ? (psaq ? [2500, 3000] : null) : tvIn.target;
  if (targetIn !== null && (!Array.isArray(targetIn) || targetIn.length !== 2)) bad('tv.target', 'null or a range [lo, hi]', targetIn);
  // Form: PSAQ-ViT's batch-norm 'l2' with its |TV − v| target [psaq]. When TV is simply
  // minimized (SPDFQ, inversion) we default to DeepInversion's mean-|Δ| 'l1' [ours]: with the
  // 'l2' form, 0.05·TV starts an order of magnitude above the classification loss at any
  // image size and flattens the images (measured on the bundled Fashion-MNIST ViT: 1,000
  // SPDFQ steps gave flat grey fields), while mean-|Δ| keeps TV a prior.
  const tv = {
    form: oneOf('tv.form', tvIn.form ?? (targetIn !== null ? 'l2' : 'l1'), ['l2', 'l1', 'none'] as const),
    weight: real('tv.weight', tvIn.weight ?? 0.05, 0, 1e6),
    target: targetIn === null ? null : ([real('tv.target[0]', targetIn[0], 0, 1e12), real('tv.target[1]', targetIn[1], 0, 1e12)] as [number, number]),
  };
  if (tv.target && tv.target[0] > tv.target[1]) bad('tv.target', 'lo ≤ hi', tv.target);

  // PSE
  const q = part<PseOptions>('pse', options.pse, on.pse);
  known('pse', q.o, ['enabled', 'weight', 'bandwidth', 'points', 'blocks']);
  const pse = {
    enabled: q.on,
    weight: real('pse.weight', q.o.weight ?? 1, 0, 1e6),
    bandwidth: real('pse.bandwidth', q.o.bandwidth ?? 0.01, 0, 10, true),
    points: int('pse.points', q.o.points ?? 10, 2, 4096),
    blocks: blocksOf('pse.blocks', q.o.blocks ?? 'all', depth, { all: Array.from({ length: depth }, (_, i) => i + 1) }),
  };
  if (pse.enabled && model.imageHeight * model.imageWidth < 2 * model.patchSize ** 2) bad('pse', 'a model with at least 2 patches', 'enabled');

  const memoryBudgetBytes = real('memoryBudgetBytes', options.memoryBudgetBytes ?? DEFAULT_MEMORY_BUDGET, 1, Number.MAX_SAFE_INTEGER);

  let realOpt: ResolvedSynthesisOptions['real'] = null;
  if (method === 'real') {
    const r = options.real;
    if (!r || typeof r !== 'object' || typeof r.path !== 'string' || r.path === '') bad('real.path', 'a folder of PNG images or an IDX file', r?.path);
    known('real', r, ['path', 'labels', 'shuffle', 'resize', 'cropPct']);
    if (r.labels !== undefined && typeof r.labels !== 'string') bad('real.labels', 'a path to an IDX labels file', r.labels);
    realOpt = {
      path: r.path,
      labels: r.labels ?? null,
      shuffle: bool('real.shuffle', r.shuffle ?? true),
      resize: oneOf('real.resize', r.resize ?? 'stretch', ['stretch', 'center-crop'] as const),
      cropPct: real('real.cropPct', r.cropPct ?? 0.875, 0, 1, true),
    };
  }
  if ((options.signal !== undefined) && !(options.signal instanceof AbortSignal)) bad('signal', 'an AbortSignal', typeof options.signal);
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') bad('onProgress', 'a function', typeof options.onProgress);
  if (apa.enabled && !sl.enabled && ceWeight === 0 && alpha === 'auto') bad('apa.alpha', 'a number when there is no classification loss (ceWeight 0) to balance against', 'auto');

  return {
    method, images, iters, rounds, warmupIters, rollFractions, seed, lr, betas, adamEps, initStd, flip, preprocess,
    targets, targetSampling, ceWeight, apa, msr, sl, tv, pse, memoryBudgetBytes, real: realOpt,
  };
}

/** The valid normalized range per channel: pixels in [0, 1] through (x − mean)/std. */
export function clampRange(p: Preprocess): { lo: number[]; hi: number[] } {
  return { lo: p.mean.map((m, c) => (0 - m) / p.std[c]), hi: p.mean.map((m, c) => (1 - m) / p.std[c]) };
}

/** The plain config the native loop reads (methods spdfq, psaq, inversion). */
export function nativeSynthConfig(model: VitConfig, o: ResolvedSynthesisOptions): NativeSynthConfig {
  const { lo, hi } = clampRange(o.preprocess);
  const perRound = Math.floor(o.iters / o.rounds);
  const rounds = Array.from({ length: o.rounds }, (_, r) => ({
    // The last round takes the remainder, so the rounds add up to `iters`.
    iters: r === o.rounds - 1 ? o.iters - perRound * (o.rounds - 1) : perRound,
    warmup: o.warmupIters,
    rollMaxH: Math.min(model.imageHeight - 1, Math.round(o.rollFractions[r] * model.imageHeight)),
    rollMaxW: Math.min(model.imageWidth - 1, Math.round(o.rollFractions[r] * model.imageWidth)),
  }));
  const elements = o.images * model.channels * model.imageHeight * model.imageWidth;
  return {
    images: o.images,
    seed: o.seed,
    rounds,
    lr: o.lr,
    beta1: o.betas[0],
    beta2: o.betas[1],
    adamEps: o.adamEps,
    initStd: o.initStd,
    flip: o.flip,
    clampLo: lo,
    clampHi: hi,
    targets: o.targets ?? [],
    balancedTargets: o.targetSampling === 'balanced',
    // SL on: soft targets; off: plain hard-label cross-entropy (ceWeight 0 switches it off).
    cls: o.ceWeight === 0 ? 'none' : o.sl.enabled ? 'soft' : 'hard',
    clsWeight: o.ceWeight,
    softLogitMin: o.sl.logitMin,
    softLogitMax: o.sl.logitMax,
    apa: o.apa.enabled,
    apaAlpha: o.apa.alpha === 'auto' ? 0 : o.apa.alpha,
    apaComponents: o.apa.components,
    priorStdMin: o.apa.stdMin,
    priorStdMaxFraction: o.apa.stdMaxFraction,
    apaBlocks: o.apa.blocks.map((b) => b - 1),
    apaDepthWeight: o.apa.depthWeight,
    apaQuery: o.apa.query,
    apaPriorPerBlock: o.apa.priorPerBlock,
    apaLoss: o.apa.loss,
    msr: o.msr.enabled,
    msrMaxRegions: o.msr.maxRegions,
    msrGrid: o.msr.grid,
    msrBoxMin: o.msr.boxMin,
    msrBoxMax: o.msr.boxMax,
    msrFlip: o.msr.flip,
    msrResampleClasses: o.msr.regionClasses === 'resample',
    tv: o.tv.form,
    tvWeight: o.tv.weight,
    tvTarget: o.tv.target !== null,
    tvTargetMin: o.tv.target ? o.tv.target[0] : 0,
    tvTargetMax: o.tv.target ? o.tv.target[1] : 0,
    // A norm of differences grows with the square root of the number of values at the same
    // per-pixel roughness, so PSAQ-ViT's v (for 32 × 3 × 224 × 224 values) scales by the
    // square root of the element ratio [ours].
    tvTargetScale: Math.sqrt(elements / PSAQ_TV_REFERENCE_ELEMENTS),
    pse: o.pse.enabled,
    pseWeight: o.pse.weight,
    kdeBandwidth: o.pse.bandwidth,
    kdePoints: o.pse.points,
    pseBlocks: o.pse.blocks.map((b) => b - 1),
    memoryBudget: Math.floor(o.memoryBudgetBytes),
  };
}
