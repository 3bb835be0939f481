// The Swin Transformer (torchvision V1) on the native engine (docs/swin.md): a CPU
// forward from a config and named weights, with every intermediate readable for
// comparison with PyTorch, its backward (input and weight gradients, attention taps), and
// what training needs (flat parameter and gradient arenas, lib/train/trainable.ts). The config is validated and completed here
// (sharp's "validate in JS"); the native side re-checks it and trusts plain data.

import * as os from 'os';
import { SpdfqError, SpdfqErrorCode } from './errors';
import { nativeAddon, NativeParamInfo, NativeSwinModel } from './native';
import { MLP_ACTIVATIONS, MlpActivation, shapeSize } from './vit-config';
import { checkFinite, checkFloat32, isFloat32Array, WeightMap } from './vit';
import { windowGeometry } from './onnx/swin-geometry';
import { PassQueue } from './pass-queue';
import { randomNamedWeights } from './random-weights';

export interface SwinConfig {
  imageHeight: number;
  imageWidth: number;
  channels: number;
  patchSize: number;
  embedDim: number;
  /** Blocks per stage (torchvision `depths`). */
  depths: number[];
  /** Attention heads per stage. */
  numHeads: number[];
  /** [height, width]. A grid that the window does not tile is padded, as torchvision does. */
  windowSize: [number, number];
  mlpRatio: number;
  qkvBias: boolean;
  layerNormEps: number;
  numClasses: number;
  activation: MlpActivation;
  /** Ours, not torchvision's: a bias on each patch merging's reduction (torchvision has
   *  none). Quantization adds it, for RepQ-ViT's reparameterization of the reduction's
   *  input (docs/swin.md, "Stage: quantization"); absent means false. */
  reductionBias?: boolean;
}

export type SwinConfigInput = Partial<Omit<SwinConfig, 'windowSize'>> & {
  imageSize?: number;
  windowSize?: number | [number, number];
};

/** torchvision's SwinTransformer defaults where it has them. */
export const SWIN_DEFAULTS = {
  channels: 3,
  mlpRatio: 4.0,
  qkvBias: true,
  layerNormEps: 1e-5,
  activation: 'gelu' as MlpActivation,
};

function fail(field: string, expected: string, received: unknown): never {
  throw new SpdfqError('E_CONFIG', `Swin config field '${field}': expected ${expected}, received ${JSON.stringify(received)}`);
}

function positiveInt(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) fail(field, 'a positive integer', v);
  return v;
}

function positiveInts(field: string, v: unknown): number[] {
  if (!Array.isArray(v) || v.length === 0) fail(field, 'a non-empty array of positive integers', v);
  return v.map((x, i) => positiveInt(`${field}[${i}]`, x));
}

/** Fill defaults and validate; throws SpdfqError('E_CONFIG') naming the field, what was
 *  expected and what was received. */
export function completeSwinConfig(input: SwinConfigInput): SwinConfig {
  if (input === null || typeof input !== 'object') fail('(config)', 'an object', input);
  const imageHeight = positiveInt('imageHeight', input.imageHeight ?? input.imageSize);
  const imageWidth = positiveInt('imageWidth', input.imageWidth ?? input.imageSize);
  const patchSize = positiveInt('patchSize', input.patchSize);
  if (imageHeight % patchSize !== 0 || imageWidth % patchSize !== 0) {
    fail('patchSize', `a divisor of the image size ${imageHeight}x${imageWidth} (torchvision's Conv2d would drop the remainder; this engine refuses)`, patchSize);
  }
  const embedDim = positiveInt('embedDim', input.embedDim);
  const depths = positiveInts('depths', input.depths);
  if (depths.length > 8) fail('depths', 'at most 8 stages', depths);
  const numHeads = positiveInts('numHeads', input.numHeads);
  if (numHeads.length !== depths.length) fail('numHeads', `one entry per stage (${depths.length})`, numHeads);
  numHeads.forEach((h, s) => {
    const dim = embedDim * 2 ** s;
    if (dim % h !== 0) fail(`numHeads[${s}]`, `a divisor of stage ${s}'s width ${dim} (embedDim × 2^${s})`, h);
  });
  const w = input.windowSize;
  const windowSize: [number, number] =
    typeof w === 'number' ? [positiveInt('windowSize', w), w]
      : Array.isArray(w) && w.length === 2 ? [positiveInt('windowSize[0]', w[0]), positiveInt('windowSize[1]', w[1])]
        : fail('windowSize', 'a positive integer or [height, width]', w);
  const mlpRatio = input.mlpRatio ?? SWIN_DEFAULTS.mlpRatio;
  if (typeof mlpRatio !== 'number' || !(mlpRatio > 0) || !Number.isFinite(mlpRatio)) fail('mlpRatio', 'a positive finite number', mlpRatio);
  if (Math.trunc(embedDim * mlpRatio) < 1) fail('mlpRatio', `at least 1/${embedDim} (the MLP would be empty)`, mlpRatio);
  const qkvBias = input.qkvBias ?? SWIN_DEFAULTS.qkvBias;
  if (typeof qkvBias !== 'boolean') fail('qkvBias', 'true or false', qkvBias);
  const layerNormEps = input.layerNormEps ?? SWIN_DEFAULTS.layerNormEps;
  if (typeof layerNormEps !== 'number' || !(layerNormEps > 0) || !Number.isFinite(layerNormEps)) fail('layerNormEps', 'a positive finite number', layerNormEps);
  const activation = input.activation ?? SWIN_DEFAULTS.activation;
  if (!MLP_ACTIVATIONS.includes(activation)) fail('activation', `one of ${MLP_ACTIVATIONS.map((a) => `'${a}'`).join(', ')}`, activation);
  const reductionBias = input.reductionBias ?? false;
  if (typeof reductionBias !== 'boolean') fail('reductionBias', 'true or false', reductionBias);
  return {
    imageHeight, imageWidth, channels: positiveInt('channels', input.channels ?? SWIN_DEFAULTS.channels), patchSize,
    embedDim, depths, numHeads, windowSize, mlpRatio, qkvBias, layerNormEps,
    numClasses: positiveInt('numClasses', input.numClasses), activation,
    // written only when set, so that torchvision configs stay exactly torchvision's
    ...(reductionBias ? { reductionBias } : {}),
  };
}

/** Every parameter of a config (torchvision state_dict names and shapes, in its order),
 *  as the native engine lays them out. */
export function swinParamSpecs(config: SwinConfig): NativeParamInfo[] {
  return nativeAddon().swinParamInfo(config);
}

function rethrow(err: unknown, callerStack: Error): never {
  const e = err as Error & { code?: string };
  const code = (e.code && e.code.startsWith('E_') ? e.code : 'E_NATIVE') as SpdfqErrorCode;
  const out = new SpdfqError(code, e.message, { cause: err });
  out.stack = `SpdfqError: ${e.message}\n${(callerStack.stack ?? '').split('\n').slice(1).join('\n')}`;
  throw out;
}

/** Packs named weights into the engine's order; a missing, extra or wrongly sized weight
 *  is an E_TENSOR error naming it with its expected shape. */
export function packSwinWeights(specs: NativeParamInfo[], weights: WeightMap): Float32Array {
  const map = weights instanceof Map ? weights : new Map(Object.entries(weights));
  const out = new Float32Array(specs.reduce((s, p) => s + p.size, 0));
  const missing: string[] = [];
  for (const spec of specs) {
    const w = map.get(spec.name);
    if (w === undefined) {
      missing.push(spec.name);
      continue;
    }
    const what = `weight '${spec.name}' [${spec.shape.join(', ')}]`;
    if (!isFloat32Array(w)) throw new SpdfqError('E_TENSOR', `${what}: expected a Float32Array, received ${typeof w}`);
    if (w.length !== shapeSize(spec.shape)) {
      throw new SpdfqError('E_TENSOR', `${what}: expected ${shapeSize(spec.shape)} floats, received ${w.length}`);
    }
    out.set(w, spec.offset);
  }
  if (missing.length > 0) {
    throw new SpdfqError('E_TENSOR', `missing weights for this Swin config: ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ` and ${missing.length - 8} more` : ''}`);
  }
  const known = new Set(specs.map((s) => s.name));
  const extra = [...map.keys()].filter((k) => !known.has(k) && !k.endsWith('relative_position_index'));
  if (extra.length > 0) {
    throw new SpdfqError('E_TENSOR', `weights not used by this Swin config (check the config): ${extra.slice(0, 8).join(', ')}`);
  }
  return out;
}

export interface SwinOptions {
  /** Worker threads (default: the machine's available parallelism). */
  threads?: number;
  /** The scalar reference kernels (gemm_ref, double-precision window attention, one thread). */
  reference?: boolean;
}

export interface SwinBackwardOptions {
  /** Extra gradients at the attention probabilities, one entry per block, stage-major
   *  (null: none): block i of stage s takes [batch, windows, heads, N, N] as
   *  output('attention.<s>.<i>') returns them (per window; N = window tokens). */
  tapAttention?: (Float32Array | null | undefined)[];
  /** Also compute every weight's gradient. Default false (synthesis freezes the weights). */
  weightGrads?: boolean;
}

export interface SwinBackwardResult {
  /** d loss / d images, [B, C, H, W]. */
  inputGrad: Float32Array;
  /** Weight gradients by torchvision name, when asked for. */
  weightGrads?: Map<string, Float32Array>;
}

/** The shape of stage s's attention probabilities (the tap): [batch, windows, heads, N, N]. */
export function swinAttentionShape(c: SwinConfig, stage: number, batch: number): number[] {
  let h = c.imageHeight / c.patchSize;
  let w = c.imageWidth / c.patchSize;
  for (let s = 0; s < stage; s++) [h, w] = [Math.ceil(h / 2), Math.ceil(w / 2)];
  const g = windowGeometry(h, w, c.windowSize, false);
  return [batch, g.windowsY * g.windowsX, c.numHeads[stage], g.tokens, g.tokens];
}

export interface SwinTensor {
  shape: number[];
  data: Float32Array;
}

export class SwinModel {
  readonly config: SwinConfig;
  readonly paramSpecs: NativeParamInfo[];
  private native: NativeSwinModel | null;
  private readonly passes = new PassQueue();
  private lastBatch = 0;  // the batch of the last completed forward (0: none)

  /** Use createSwin(); this constructor trusts its arguments. */
  constructor(config: SwinConfig, specs: NativeParamInfo[], native: NativeSwinModel) {
    this.config = config;
    this.paramSpecs = specs;
    this.native = native;
  }

  private get handle(): NativeSwinModel {
    if (!this.native) throw new SpdfqError('E_STATE', 'this model was disposed');
    return this.native;
  }

  /** Logits [batch, numClasses] of NCHW float images; the intermediates stay readable
   *  with output() until the next forward. Calls on one model run one after another. */
  forward(images: Float32Array, batch: number): Promise<Float32Array> {
    const stack = new Error();
    const c = this.config;
    if (typeof batch !== 'number' || !Number.isInteger(batch) || batch < 1 || batch > 2 ** 20) {
      throw new SpdfqError('E_CONFIG', `batch: expected an integer in [1, ${2 ** 20}], received ${String(batch)}`);
    }
    const n = batch * c.channels * c.imageHeight * c.imageWidth;
    if (!isFloat32Array(images) || images.length !== n) {
      throw new SpdfqError('E_TENSOR', `images: expected a Float32Array of ${n} floats ([${batch}, ${c.channels}, ${c.imageHeight}, ${c.imageWidth}]), received ${isFloat32Array(images) ? `${images.length} floats` : typeof images}`);
    }
    return this.passes
      .run(async () => {
        this.lastBatch = 0;
        const logits = await this.handle.forward(images, batch);
        this.lastBatch = batch;
        return logits;
      })
      .catch((e) => rethrow(e, stack));
  }

  /** forward() under the name the trainer uses (TrainableModel). */
  forwardLogits(images: Float32Array, batch: number): Promise<Float32Array> {
    return this.forward(images, batch);
  }

  /** Backward of the last forward from d loss/d logits [batch, numClasses]: the input
   *  gradient, optionally every weight's gradient, with optional gradients injected at the
   *  attention probabilities. Calls on one model run one after another. */
  backward(dlogits: Float32Array, options: SwinBackwardOptions = {}): Promise<SwinBackwardResult> {
    const stack = new Error();
    return this.passes
      .run(async () => {
        const c = this.config;
        const B = this.lastBatch;
        if (B === 0) throw new SpdfqError('E_STATE', 'backward needs a completed forward pass on this model first');
        const what = `dlogits [${B}, ${c.numClasses}]`;
        checkFinite(what, checkFloat32(what, dlogits, B * c.numClasses));
        let taps: (Float32Array | null)[] | null = null;
        if (options.tapAttention !== undefined) {
          const blocks = c.depths.reduce((a, d) => a + d, 0);
          const list = options.tapAttention;
          if (!Array.isArray(list) || list.length !== blocks) {
            throw new SpdfqError('E_TENSOR', `tapAttention: expected an array of ${blocks} entries (one per block, stage-major), received ${Array.isArray(list) ? list.length : typeof list}`);
          }
          const stageOf = c.depths.flatMap((d, s) => Array<number>(d).fill(s));
          taps = list.map((t, l) => {
            if (t == null) return null;
            const shape = swinAttentionShape(c, stageOf[l], B);
            return checkFloat32(`tapAttention[${l}] [${shape.join(', ')}]`, t, shapeSize(shape));
          });
        }
        const h = this.handle;
        const inputGrad = await h.backward(dlogits, taps, options.weightGrads === true);
        const out: SwinBackwardResult = { inputGrad };
        if (options.weightGrads) out.weightGrads = this.byName(h.getGrads());
        return out;
      })
      .catch((e) => rethrow(e, stack));
  }

  /** Backward with weight gradients, left flat in the native arena (TrainableModel): the
   *  training step's backward, with no per-name unpacking. */
  backwardWeights(dlogits: Float32Array): Promise<void> {
    const stack = new Error();
    return this.passes
      .run(async () => {
        await this.handle.backward(dlogits, null, true);
      })
      .catch((e) => rethrow(e, stack));
  }

  /** The native object, for loops that drive it directly (the trainer's flat parameter
   *  and gradient arenas). Use it only inside `exclusive`, so no queued pass overlaps. */
  nativeHandle(): NativeSwinModel {
    return this.handle;
  }

  /** Runs `job` with this model to itself: queued after earlier calls, and later calls wait. */
  exclusive<T>(job: () => Promise<T>): Promise<T> {
    return this.passes.run(job);
  }

  /** A copy of the weights by torchvision name. */
  async getWeights(): Promise<Map<string, Float32Array>> {
    return this.exclusive(async () => this.byName(this.handle.getParams()));
  }

  /** Replaces all weights (same names and shapes as createSwin). Waits for queued passes. */
  async setWeights(weights: WeightMap): Promise<void> {
    const packed = packSwinWeights(this.paramSpecs, weights);
    return this.exclusive(async () => this.handle.setParams(packed));
  }

  private byName(flat: Float32Array): Map<string, Float32Array> {
    return new Map(this.paramSpecs.map((p) => [p.name, flat.slice(p.offset, p.offset + p.size)]));
  }

  /** An intermediate of the last forward, channels-last as torchvision: 'patch_embed',
   *  'block.<stage>.<index>', 'merge.<stage>' ([B, H, W, C]), 'pooled' ([B, C]), 'logits',
   *  a block's attention probabilities 'attention.<stage>.<index>' ([B, windows, heads, N, N]),
   *  or its attention output before proj 'attention_values.<stage>.<index>' ([B, windows, N, dim]). */
  async output(name: string): Promise<SwinTensor> {
    const stack = new Error();
    await this.passes.idle();
    try {
      return this.handle.output(name);
    } catch (e) {
      rethrow(e, stack);
    }
  }

  /** Host bytes of the activations a forward on `batch` images keeps. */
  activationBytes(batch: number): number {
    return this.handle.activationBytes(batch);
  }

  async dispose(): Promise<void> {
    await this.passes.idle();
    this.native?.dispose();
    this.native = null;
  }
}

/** Builds a CPU Swin from a config and named weights (torchvision state_dict names; the
 *  relative_position_index buffers may be included and are ignored: the engine derives them). */
export function createSwin(input: SwinConfigInput, weights: WeightMap, options: SwinOptions = {}): SwinModel {
  const stack = new Error();
  const config = completeSwinConfig(input);
  const threads = options.threads ?? (typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length);
  if (!Number.isInteger(threads) || threads < 1 || threads > 1024) {
    throw new SpdfqError('E_CONFIG', `threads: expected an integer in [1, 1024], received ${String(threads)}`);
  }
  try {
    const specs = swinParamSpecs(config);
    const native = new (nativeAddon().SwinModel)(config, packSwinWeights(specs, weights), threads);
    if (options.reference) native.setReference(true);
    return new SwinModel(config, specs, native);
  } catch (e) {
    if (e instanceof SpdfqError) throw e;
    rethrow(e, stack);
  }
}

/** Random weights with torchvision's Swin scales (trunc_normal_ std 0.02 for Linear weights
 *  and relative-position bias tables, zero biases, LayerNorm 1/0; the patch conv gets the
 *  same 0.02, as randomVitWeights gives the ViT's) — for tests and the start of training;
 *  deterministic for a seed. */
export function randomSwinWeights(input: SwinConfigInput, seed = 1): Map<string, Float32Array> {
  return randomNamedWeights(swinParamSpecs(completeSwinConfig(input)), seed);
}
