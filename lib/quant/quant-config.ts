// Quantization options: what is quantized, to how many bits, with which quantizer. Every
// default names its source. Presets follow the peers' own published code (RepQ-ViT, PSAQ-ViT) so baselines
// are compared on their own terms as well as on ours.

import { SpdfqError } from '../errors';
import { VitConfig } from '../vit-config';
import { ReconstructProgress, SiteName, SearchSpec } from '../native';

export type BitsPreset = 'w8a8' | 'w6a6' | 'w4a8' | 'w4a4' | 'w3a3';
export const BITS_PRESETS: Record<BitsPreset, { weight: number; act: number }> = {
  w8a8: { weight: 8, act: 8 },
  w6a6: { weight: 6, act: 6 },
  w4a8: { weight: 4, act: 8 },
  w4a4: { weight: 4, act: 4 },
  w3a3: { weight: 3, act: 3 },
};

/**
 * - `repq` (default; RepQ-ViT, ICCV 2023, the quantizer SPDFQ's pipeline uses): per-channel
 *   weights with percentile-MSE search, per-tensor activations at every Linear input and
 *   both operands of both attention matmuls, the image (patch-embedding input) at 8 bits,
 *   LayerNorm reparameterization of post-LN inputs; log√2 for the softmax output and
 *   asymmetric weights at ≤ 4 bits (RepQ-ViT's), uniform softmax and symmetric weights at 6
 *   and 8 bits (docs/quantization.md, "Deployment defaults": equal accuracy there, and the
 *   forms onnxruntime runs on integer kernels — 1.8× its fp32 speed instead of 0.8×).
 * - `psaq` (PSAQ-ViT, ECCV 2022): symmetric per-channel MinMax weights, asymmetric MinMax
 *   per-tensor activations, softmax output left in float, no reparameterization.
 */
export type QuantPreset = 'repq' | 'psaq';

export interface ReconstructionOptions {
  /** Iterations per block. Default 200 at every bit width: I&S-ViT's W6A6 setting, and our
   *  measurement (docs/results.md, "The papers' budget"): with 32 calibration images its
   *  W4A4 setting of 1,000 overfits them and costs every calibration source accuracy at
   *  W3A3 (real −0.4, PSAQ-ViT −2.9, SPDFQ −4.7, noise −12.9 points against 200). */
  iters?: number;
  /** Adam learning rate, cosine-decayed to 0. Default 4e-5 (I&S-ViT); our measurement keeps it
   *  (docs/results.md, "Reconstruction learning rate"): 2e-4 helps real images but costs SPDFQ's
   *  32 synthetic images on two of three models. */
  lr?: number;
  /** Images per step. Default 32 (all synthetic images; I&S-ViT uses 64 of 1024). */
  batch?: number;
  seed?: number;
  /** 'ste': train the weights through straight-through rounding (I&S-ViT); 'adaround':
   *  learn each weight's rounding direction with the weights frozen (AdaRound / BRECQ).
   *  Default 'ste'. */
  rounding?: 'ste' | 'adaround';
  /** AdaRound: Adam learning rate of the rounding variables. Default 1e-3 (BRECQ). */
  roundLr?: number;
  /** AdaRound: weight λ of the rounding regularizer against the block MSE normalized by its
   *  value before training. Default 0.01 (BRECQ's round-loss weight). */
  roundReg?: number;
  /** AdaRound: fraction of the iterations before the regularizer starts. Default 0.2 (AdaRound). */
  roundWarmup?: number;
  /** QDrop: probability that an activation value stays in float during reconstruction.
   *  Default 0 (off; QDrop's paper uses 0.5). */
  qdrop?: number;
  /** Guard against overfitting few images: this fraction of the calibration images is held
   *  out of training, each block's held-out output MSE is measured every `checkEvery`
   *  iterations (and before the first), and the block keeps the weights of its best check.
   *  Default 0 (off). */
  holdout?: number;
  /** Iterations between held-out checks. Default: iters / 20 (at least 1). */
  checkEvery?: number;
  /** Also reconstruct the patch embedding (towards the fp embeddings, before the blocks)
   *  and the head (towards the fp logits, after them), as BRECQ reconstructs the first and
   *  last layers. Default true (BACK_END_DEFAULTS). */
  embed?: boolean;
  head?: boolean;
  /** LSQ (Esser et al., ICLR 2020): also learn the step sizes of each pre-norm block's
   *  Linear-input activation quantizers (qkv, proj, fc1, fc2 inputs; uniform grids), by Adam
   *  on log(step). Default true (BACK_END_DEFAULTS), false when `qdrop` is set: the two are
   *  not combined. */
  learnSteps?: boolean;
  /** LSQ: Adam learning rate of log(step), cosine-decayed. Default 1e-3 (ours: ≤ 0.1 % a step;
   *  4e-3 helps real images and costs SPDFQ's at W4A4, docs/results.md, "Reconstruction learning rate"). */
  stepLr?: number;
}

export interface QuantOptions {
  bits?: BitsPreset | { weight: number; act: number };
  preset?: QuantPreset;
  /** 'symmetric' gives TensorRT-compatible weights (zero point 0). Default: repq asymmetric
   *  at ≤ 4-bit weights, symmetric at ≥ 6 (see the preset); psaq symmetric. */
  weightMode?: 'asymmetric' | 'symmetric';
  /** TensorRT explicit quantization (its QDQ rules: symmetric, zero point 0): symmetric weights and activations
   *  (zero point 0, signed grids) and a uniform softmax quantizer. Default false. */
  tensorrt?: boolean;
  /** Activation ranges: 'percentile' = RepQ-ViT's percentile search by MSE; 'minmax'. */
  rangeMethod?: 'percentile' | 'minmax';
  /** Candidate percentiles for the search. Default [0.999, 0.9999, 0.99999] (RepQ-ViT). */
  percentiles?: number[];
  /** Bits of the image quantizer (patch-embedding input). Default 8 (RepQ-ViT). */
  inputBits?: number;
  /** The valid range of normalized pixels, [(0 − mean)/std, (1 − mean)/std] over the
   *  channels. When given, the image quantizer covers exactly this range instead of being
   *  calibrated (ours: synthetic images need not span the pixel range real images use,
   *  and a data-free method knows the input domain from the preprocessing alone).
   *  `run`, `quantize` and `compare` pass it from the model's preprocessing. */
  inputRange?: [number, number];
  /** Softmax-output quantizer. Default: repq 'log2' at ≤ 4-bit activations, 'uniform' at
   *  ≥ 6 (see the preset); psaq 'none'. */
  probs?: 'log2' | 'uniform' | 'none';
  /** LayerNorm scale reparameterization (RepQ-ViT) of qkv and fc1 inputs; pre-norm models only. */
  reparameterize?: boolean;
  /** Bits per weight (timm name) or activation site (`blocks.3.fc2_in`, `patch_in`, `head_in`). */
  overrides?: Record<string, number>;
  /** Shorthand: patch embedding and head weights (and their inputs) at this many bits. */
  firstLastBits?: number;
  /** Block reconstruction after calibration; false to skip. Default: on. */
  reconstruction?: ReconstructionOptions | false;
  /** 'joint': every activation site from one full-precision pass (RepQ-ViT's
   *  initialization); 'sequential': block by block on the model quantized up to that
   *  block. Default 'sequential' (BACK_END_DEFAULTS). */
  calibration?: 'joint' | 'sequential';
  /** Images per calibration forward (memory). Default 32. */
  calibrationBatch?: number;
}

export interface SitePlan {
  site: SiteName;
  block?: number;
  key: string;
  spec: SearchSpec | null; // null: left in float
  perChannelForReparam: boolean;
  /** A post-LayerNorm site: the LayerNorm and the next Linear (parameter name prefixes,
   *  `blocks.0.norm1`, `blocks.0.attn.qkv`) its per-channel quantizers fold into. */
  reparam?: { norm: string; linear: string };
}

export interface WeightPlan {
  name: string;
  spec: SearchSpec;
}

export interface QuantPlan {
  preset: QuantPreset;
  inputRange: [number, number] | null;
  weightBits: number;
  actBits: number;
  sites: SitePlan[];
  weights: WeightPlan[];
  reparameterize: boolean;
  reconstruction: Required<ReconstructionOptions> | null;
  calibration: 'joint' | 'sequential';
  calibrationBatch: number;
  /** Where the plan departs from its preset because of the architecture, in words. */
  notes: string[];
}

/** The back end's defaults, from our measurement (docs/results.md, "Back end"): sequential
 *  calibration (RepQ-ViT's order), LSQ step sizes and patch-embedding and head
 *  reconstruction (BRECQ's first and last layers) together beat the single-stage back end in
 *  7 of 8 cells (CIFAR-10 and MNIST 14×14, W4A4 and W3A3, real and SPDFQ images, 3 seeds),
 *  and the default run stays under 3 minutes (169.8 s against 163.1 s on the 2-core machine,
 *  docs/results.md, "Back end"). Until 2026-12-04 the
 *  defaults were joint calibration and none of the three (LEGACY_BACK_END in
 *  lib/compare/protocol.ts, which reads records made under them). */
export const BACK_END_DEFAULTS = { calibration: 'sequential', embed: true, head: true, learnSteps: true } as const;

const BLOCK_SITES: SiteName[] = ['qkv_in', 'q', 'k', 'v', 'probs', 'proj_in', 'fc1_in', 'fc2_in'];

function checkBits(what: string, b: unknown): number {
  if (typeof b !== 'number' || !Number.isInteger(b) || b < 2 || b > 8) {
    throw new SpdfqError('E_CONFIG', `${what}: expected an integer number of bits in [2, 8], received ${JSON.stringify(b)}`);
  }
  return b;
}

export function resolveBits(bits: QuantOptions['bits']): { weight: number; act: number } {
  if (bits === undefined) return BITS_PRESETS.w4a4;
  if (typeof bits === 'string') {
    const p = BITS_PRESETS[bits as BitsPreset];
    if (!p) throw new SpdfqError('E_CONFIG', `bits: expected one of ${Object.keys(BITS_PRESETS).join(', ')} or { weight, act }, received '${bits}'`);
    return p;
  }
  return { weight: checkBits('bits.weight', bits.weight), act: checkBits('bits.act', bits.act) };
}

/** The options every architecture's plan resolves the same way, validated, with their
 *  defaults (sources on QuantOptions and the presets). */
export interface QuantSettings {
  preset: QuantPreset;
  repq: boolean;
  weightBits: number;
  actBits: number;
  tensorrt: boolean;
  weightMode: 'asymmetric' | 'symmetric';
  method: 'percentile' | 'minmax';
  percentiles: number[];
  inputBits: number;
  probs: 'log2' | 'uniform' | 'none';
  /** Whether RepQ-ViT's reparameterization is asked for (an architecture may decline). */
  reparameterize: boolean;
  overrides: Map<string, number>;
  inputRange: [number, number] | null;
  calibrationBatch: number;
  calibration: 'joint' | 'sequential';
  reconstruction: Required<ReconstructionOptions> | null;
}

/** Resolves and validates `options`; `firstLast` names the patch-embedding and head
 *  weights and the head input, which `firstLastBits` sets. */
export function resolveQuantSettings(options: QuantOptions, firstLast: string[]): QuantSettings {
  const preset = options.preset ?? 'repq';
  if (preset !== 'repq' && preset !== 'psaq') throw new SpdfqError('E_CONFIG', `preset: expected 'repq' or 'psaq', received '${String(preset)}'`);
  const { weight: wBits, act: aBits } = resolveBits(options.bits);
  const repq = preset === 'repq';
  const tensorrt = options.tensorrt ?? false;
  if (typeof tensorrt !== 'boolean') throw new SpdfqError('E_CONFIG', `tensorrt: expected true or false, received ${JSON.stringify(tensorrt)}`);
  // At ≤ 4 bits RepQ-ViT's asymmetric weights and log√2 softmax gain accuracy; at 6 and 8
  // bits they do not, and symmetric weights with a uniform softmax are what onnxruntime
  // runs on integer kernels (docs/quantization.md, "Deployment defaults").
  const lowBits = (b: number) => b <= 4;
  const weightMode = tensorrt ? 'symmetric' : (options.weightMode ?? (repq && lowBits(wBits) ? 'asymmetric' : 'symmetric'));
  if (weightMode !== 'asymmetric' && weightMode !== 'symmetric') throw new SpdfqError('E_CONFIG', `weightMode: expected 'asymmetric' or 'symmetric', received '${String(weightMode)}'`);
  const method = options.rangeMethod ?? (repq ? 'percentile' : 'minmax');
  if (method !== 'percentile' && method !== 'minmax') throw new SpdfqError('E_CONFIG', `rangeMethod: expected 'percentile' or 'minmax', received '${String(method)}'`);
  const percentiles = options.percentiles ?? [0.999, 0.9999, 0.99999];
  if (!Array.isArray(percentiles) || percentiles.some((p) => typeof p !== 'number' || !(p > 0.5 && p <= 1))) {
    throw new SpdfqError('E_CONFIG', `percentiles: expected numbers in (0.5, 1], received ${JSON.stringify(percentiles)}`);
  }
  const inputBits = checkBits('inputBits', options.inputBits ?? 8);
  const probs = options.probs ?? (tensorrt ? 'uniform' : repq ? (lowBits(aBits) ? 'log2' : 'uniform') : 'none');
  if (tensorrt && probs === 'log2') throw new SpdfqError('E_CONFIG', "probs: 'log2' has no TensorRT form; with tensorrt use 'uniform' or 'none'");
  if (!['log2', 'uniform', 'none'].includes(probs)) throw new SpdfqError('E_CONFIG', `probs: expected 'log2', 'uniform' or 'none', received '${String(probs)}'`);
  // Reparameterization folds asymmetric per-channel zero points: not for symmetric grids.
  const reparameterize = options.reparameterize ?? (repq && !tensorrt);
  const overrides = new Map<string, number>(Object.entries(options.overrides ?? {}).map(([k, v]) => [k, checkBits(`overrides['${k}']`, v)]));
  if (options.firstLastBits !== undefined) {
    const b = checkBits('firstLastBits', options.firstLastBits);
    for (const k of firstLast) if (!overrides.has(k)) overrides.set(k, b);
  }
  const inputRange = options.inputRange ?? null;
  if (inputRange !== null && (!Array.isArray(inputRange) || inputRange.length !== 2 || !(inputRange[0] < inputRange[1]) || !inputRange.every(Number.isFinite))) {
    throw new SpdfqError('E_CONFIG', `inputRange: expected [low, high] with low < high, received ${JSON.stringify(inputRange)}`);
  }
  const calibrationBatch = options.calibrationBatch ?? 32;
  if (!Number.isInteger(calibrationBatch) || calibrationBatch < 1) throw new SpdfqError('E_CONFIG', `calibrationBatch: expected a positive integer, received ${calibrationBatch}`);
  const reconstruction = options.reconstruction === false ? null : resolveReconstruction(options.reconstruction ?? {});
  const calibration = options.calibration ?? BACK_END_DEFAULTS.calibration;
  if (calibration !== 'joint' && calibration !== 'sequential') throw new SpdfqError('E_CONFIG', `calibration: expected 'joint' or 'sequential', received '${String(calibration)}'`);
  return {
    preset, repq, weightBits: wBits, actBits: aBits, tensorrt, weightMode, method, percentiles, inputBits, probs,
    reparameterize, overrides, inputRange, calibrationBatch, calibration, reconstruction,
  };
}

/** The search of an activation site (`key` as in `overrides`) at `bits` unless overridden. */
export function activationSpec(st: QuantSettings, key: string, kind: 'uniform' | 'log2', bits: number): SearchSpec {
  return { kind, bits: st.overrides.get(key) ?? bits, symmetric: st.tensorrt && kind === 'uniform', method: st.method, percentiles: st.percentiles };
}

/** The per-channel search of a weight (by name). */
export function weightSpec(st: QuantSettings, name: string): SearchSpec {
  return {
    kind: 'uniform',
    bits: st.overrides.get(name) ?? st.weightBits,
    symmetric: st.weightMode === 'symmetric',
    // Weights: RepQ-ViT searches per channel by MSE; PSAQ-ViT takes the per-channel MinMax.
    method: st.repq ? 'percentile' : 'minmax',
    percentiles: st.percentiles,
  };
}

/** The image (patch-embedding input) site's plan. */
export function patchInputSite(st: QuantSettings): SitePlan {
  return { site: 'patch_in', key: 'patch_in', spec: activationSpec(st, 'patch_in', 'uniform', st.overrides.get('patch_in') ?? st.inputBits), perChannelForReparam: false };
}

/** A block's eight sites (`prefix` + site name as keys); `reparam(site)` names the
 *  LayerNorm and the Linear a post-LayerNorm site folds into, or null. */
export function blockSites(st: QuantSettings, prefix: string, block: number, reparam: (site: SiteName) => SitePlan['reparam'] | null): SitePlan[] {
  return BLOCK_SITES.map((site) => {
    const key = `${prefix}${site}`;
    const spec = site !== 'probs' ? activationSpec(st, key, 'uniform', st.actBits) : st.probs === 'none' ? null : activationSpec(st, key, st.probs, st.actBits);
    const r = reparam(site);
    return { site, block, key, spec, perChannelForReparam: r !== null, ...(r ? { reparam: r } : {}) };
  });
}

/** Refuses an override that names nothing the plan quantizes (`extra`: names accepted anyway). */
export function checkOverrides(st: QuantSettings, sites: SitePlan[], weights: WeightPlan[], example: string, extra: string[] = []): void {
  const known = new Set([...sites.map((s) => s.key), ...weights.map((w) => w.name), ...extra]);
  for (const k of st.overrides.keys()) {
    if (!known.has(k)) throw new SpdfqError('E_CONFIG', `overrides: '${k}' names no quantized weight or activation site of this model (e.g. ${example})`);
  }
}

export function planQuantization(config: VitConfig, options: QuantOptions = {}): QuantPlan {
  const st = resolveQuantSettings(options, ['patch_embed.proj.weight', 'head.weight', 'head_dist.weight', 'head_in']);
  const reparameterize = st.reparameterize && config.normPlacement === 'pre';
  const notes: string[] = [];
  if (st.reparameterize && !reparameterize) {
    notes.push(
      "post-norm blocks: the qkv and fc1 inputs are LayerNorm outputs that also carry the residual stream, so RepQ-ViT's reparameterization (per-channel scales folded into the LayerNorm) would change the residual; those sites use per-tensor quantizers",
    );
  }
  const sites: SitePlan[] = [patchInputSite(st)];
  for (let l = 0; l < config.depth; l++) {
    const p = `blocks.${l}.`;
    sites.push(...blockSites(st, p, l, (site) =>
      !reparameterize ? null : site === 'qkv_in' ? { norm: `${p}norm1`, linear: `${p}attn.qkv` } : site === 'fc1_in' ? { norm: `${p}norm2`, linear: `${p}mlp.fc1` } : null));
  }
  sites.push({ site: 'head_in', key: 'head_in', spec: activationSpec(st, 'head_in', 'uniform', st.actBits), perChannelForReparam: false });

  const weights: WeightPlan[] = [];
  const add = (name: string) => weights.push({ name, spec: weightSpec(st, name) });
  add('patch_embed.proj.weight');
  for (let l = 0; l < config.depth; l++) {
    for (const n of ['attn.qkv', 'attn.proj', 'mlp.fc1', 'mlp.fc2']) add(`blocks.${l}.${n}.weight`);
  }
  add('head.weight');
  if (config.distToken) add('head_dist.weight');
  checkOverrides(st, sites, weights, "'blocks.0.attn.qkv.weight', 'blocks.0.fc2_in', 'patch_in'", ['head_dist.weight']);
  return {
    preset: st.preset, inputRange: st.inputRange, weightBits: st.weightBits, actBits: st.actBits, sites, weights, reparameterize,
    reconstruction: st.reconstruction, calibration: st.calibration, calibrationBatch: st.calibrationBatch, notes,
  };
}

/** `quant` with every BACK_END_DEFAULTS setting written out as it resolves: what a
 *  comparison records, so that its results say which back end made them whatever the
 *  defaults are when they are read. */
export function explicitBackEnd<Q extends { calibration?: 'joint' | 'sequential'; reconstruction?: ReconstructionOptions }>(quant: Q): Q {
  const r = resolveReconstruction(quant.reconstruction ?? {});
  return {
    ...quant,
    calibration: quant.calibration ?? BACK_END_DEFAULTS.calibration,
    reconstruction: { ...quant.reconstruction, embed: r.embed, head: r.head, learnSteps: r.learnSteps },
  };
}

/** Reconstruction options with their defaults (sources on ReconstructionOptions), validated. */
function resolveReconstruction(r: ReconstructionOptions): Required<ReconstructionOptions> {
  const reconstruction: Required<ReconstructionOptions> = {
    iters: r.iters ?? 200,
    lr: r.lr ?? 4e-5,
    batch: r.batch ?? 32,
    seed: r.seed ?? 0,
    rounding: r.rounding ?? 'ste',
    roundLr: r.roundLr ?? 1e-3,
    roundReg: r.roundReg ?? 0.01,
    roundWarmup: r.roundWarmup ?? 0.2,
    qdrop: r.qdrop ?? 0,
    holdout: r.holdout ?? 0,
    checkEvery: 0,
    embed: r.embed ?? BACK_END_DEFAULTS.embed,
    head: r.head ?? BACK_END_DEFAULTS.head,
    learnSteps: r.learnSteps ?? (typeof r.qdrop === 'number' && r.qdrop > 0 ? false : BACK_END_DEFAULTS.learnSteps),
    stepLr: r.stepLr ?? 1e-3,
  };
  reconstruction.checkEvery = r.checkEvery ?? Math.max(1, Math.round(reconstruction.iters / 20));
  if (reconstruction.rounding !== 'ste' && reconstruction.rounding !== 'adaround') throw new SpdfqError('E_CONFIG', `reconstruction.rounding: expected 'ste' or 'adaround', received '${String(reconstruction.rounding)}'`);
  for (const [k, lo, hi] of [['roundLr', 0, 1], ['roundReg', 0, 1e3], ['roundWarmup', 0, 1], ['qdrop', 0, 0.99], ['holdout', 0, 0.9]] as const) {
    const v = reconstruction[k];
    if (typeof v !== 'number' || !(v >= lo && v <= hi)) throw new SpdfqError('E_CONFIG', `reconstruction.${k}: expected a number in [${lo}, ${hi}], received ${String(v)}`);
  }
  if (!Number.isInteger(reconstruction.iters) || reconstruction.iters < 0) throw new SpdfqError('E_CONFIG', `reconstruction.iters: expected an integer ≥ 0, received ${reconstruction.iters}`);
  if (!(reconstruction.stepLr >= 0 && reconstruction.stepLr <= 1)) throw new SpdfqError('E_CONFIG', `reconstruction.stepLr: expected a number in [0, 1], received ${String(reconstruction.stepLr)}`);
  if (reconstruction.learnSteps === true && reconstruction.qdrop > 0) throw new SpdfqError('E_CONFIG', `reconstruction.learnSteps with reconstruction.qdrop ${reconstruction.qdrop}: not supported together (the step gradient would count values QDrop left in float); set one of them`);
  for (const k of ['embed', 'head', 'learnSteps'] as const) {
    if (typeof reconstruction[k] !== 'boolean') throw new SpdfqError('E_CONFIG', `reconstruction.${k}: expected true or false, received ${String(reconstruction[k])}`);
  }
  if (!Number.isInteger(reconstruction.checkEvery) || reconstruction.checkEvery < 1) throw new SpdfqError('E_CONFIG', `reconstruction.checkEvery: expected a positive integer, received ${reconstruction.checkEvery}`);
  if (!(reconstruction.lr >= 0)) throw new SpdfqError('E_CONFIG', `reconstruction.lr: expected a number ≥ 0, received ${reconstruction.lr}`);
  if (!Number.isInteger(reconstruction.batch) || reconstruction.batch < 1) throw new SpdfqError('E_CONFIG', `reconstruction.batch: expected a positive integer, received ${reconstruction.batch}`);
  return reconstruction;
}

/** The range of normalized pixels a model with this preprocessing can receive. */
export function normalizedPixelRange(pre: { mean: number[]; std: number[] }): [number, number] {
  const lo = Math.min(...pre.mean.map((m, c) => (0 - m) / pre.std[c]));
  const hi = Math.max(...pre.mean.map((m, c) => (1 - m) / pre.std[c]));
  return [lo, hi];
}

/** The quantizer forms a plan uses, as one string ("asymmetric weights, log2 softmax"):
 *  comparisons record it per bit width, so that results made under other defaults are
 *  never merged into one table. */
export function quantizerForms(plan: QuantPlan): string {
  const probs = plan.sites.find((s) => s.site === 'probs')?.spec?.kind ?? 'none';
  const symmetric = plan.weights.every((w) => w.spec.symmetric);
  return `${symmetric ? 'symmetric' : 'asymmetric'} weights, ${probs} softmax`;
}

/** What comparisons made before quantizerForms was recorded used at every bit width. */
export const LEGACY_QUANTIZER_FORMS = 'asymmetric weights, log2 softmax';

/** What quantize() reports as it goes. */
export interface QuantizeProgress {
  stage: 'calibrate' | 'reparameterize' | 'weights' | 'reconstruct' | 'done';
  reconstruct?: ReconstructProgress;
}
