// The typed engine API: createVit(config, weights) → VitModel with async forward/backward.
// Validation happens here (expected vs. received); the native side re-checks every tensor.
// Calls on one model are queued, so callers may fire them without awaiting each other.
// A model runs on the CPU engine or, where the addon was built with CUDA, on a GPU
// (`device: 'cuda:N'`, docs/cuda.md); both take and return host Float32Arrays.

import * as os from 'os';
import { SpdfqError, SpdfqErrorCode } from './errors';
import { nativeAddon, NativeVitModel } from './native';
import { PassQueue } from './pass-queue';
import { randomNamedWeights } from './random-weights';
import {
  completeVitConfig,
  ParamSpec,
  shapeSize,
  tokenCount,
  VitConfig,
  VitConfigInput,
  vitParamSpecs,
} from './vit-config';

export type WeightMap = Map<string, Float32Array> | Record<string, Float32Array>;

/** Where a model runs: the CPU engine, or CUDA device N ('cuda' means 'cuda:0'). */
export type VitDevice = 'cpu' | 'cuda' | `cuda:${number}`;

export interface VitOptions {
  /** Worker threads for this model's passes (CPU; a CUDA model ignores it).
   *  Default: os.availableParallelism(). */
  threads?: number;
  /** CPU: run the scalar reference kernels (`_ref`: one thread, textbook loops) — for
   *  checks. CUDA: run the FP32 GEMMs instead of the default TF32 tensor-core GEMMs. */
  reference?: boolean;
  /** Activation memory a pass may use; a larger batch fails with E_MEMORY naming the
   *  batch that fits. Default: half of the machine's total memory on the CPU; on CUDA,
   *  the device's free memory when the activations are allocated. */
  activationBudgetBytes?: number;
  /** 'cpu' (default), 'cuda' or 'cuda:N'. CUDA needs an addon built with the CUDA backend
   *  (backends() lists 'cuda') and an sm_80+ GPU; otherwise createVit throws E_CONFIG
   *  saying which is missing. Synthesis, block reconstruction and integer execution run
   *  on the CPU only (they throw E_CONFIG on a CUDA model). */
  device?: VitDevice;
}

/** A device option checked against this addon and machine. */
export interface ResolvedDevice {
  kind: 'cpu' | 'cuda';
  index: number;
  /** 'cpu' or 'cuda:N', as VitModel.device reports it. */
  name: string;
}

/** Largest CUDA device index accepted (an int32 on the native side). */
const MAX_DEVICE_INDEX = 2 ** 31 - 1;

/** How to get a build with the CUDA backend (docs/cuda.md, "Building"). */
export const CUDA_BUILD_HINT =
  'rebuild it on a machine with the CUDA toolkit (nvcc 12 or newer): `npx cmake-js compile --CDSPDFQ_CUDA=ON` in the package folder (docs/cuda.md)';

/** Parses 'cpu' | 'cuda' | 'cuda:N' and checks that this addon and machine can run it:
 *  E_CONFIG saying what was expected and received, that the build has no CUDA backend
 *  (and how to build one), or that no usable CUDA device was found (and why). */
export function resolveDevice(device: unknown): ResolvedDevice {
  const m = typeof device === 'string' ? /^(cpu|cuda)(?::(\d+))?$/.exec(device) : null;
  const index = m?.[2] === undefined ? 0 : Number(m[2]);
  if (!m || (m[1] === 'cpu' && index !== 0) || index > MAX_DEVICE_INDEX) {
    const received = typeof device === 'string' ? `'${device}'` : describe(device);
    throw new SpdfqError('E_CONFIG', `device: expected 'cpu' or 'cuda[:N]', received ${received}`);
  }
  if (m[1] === 'cpu') return { kind: 'cpu', index: 0, name: 'cpu' };
  const addon = nativeAddon();
  const backends = addon.backends();
  if (!backends.includes('cuda') || typeof addon.cudaDevices !== 'function') {
    throw new SpdfqError(
      'E_CONFIG',
      `device '${device}': this build of spdfq-native supports ${backends.join(', ')} only; it was compiled without the CUDA backend. To run on a GPU, ${CUDA_BUILD_HINT}`,
    );
  }
  const info = addon.cudaDevices();
  if (info.devices.length === 0) {
    // Starts like the CPU-only message (what the build supports), then says what is missing here.
    throw new SpdfqError(
      'E_CONFIG',
      `device '${device}': this build of spdfq-native supports ${backends.join(' and ')}, but no CUDA device was found (${info.reason || 'the driver reports none'})`,
    );
  }
  if (index >= info.devices.length) {
    const list = info.devices.map((d) => `cuda:${d.index} ${d.name}`).join(', ');
    throw new SpdfqError('E_CONFIG', `device '${device}': this machine has ${info.devices.length} CUDA device(s): ${list}`);
  }
  const d = info.devices[index];
  if (!d.usable) {
    throw new SpdfqError('E_CONFIG', `device '${device}' (${d.name}, compute capability ${d.computeCapability}) is older than 8.0 (sm_80), which the CUDA backend needs`);
  }
  return { kind: 'cuda', index, name: `cuda:${index}` };
}

export interface ForwardOptions {
  /** Return each block's attention probabilities [B, H, N, N]. */
  attention?: boolean;
  /** Return each block's per-head attention output A·V [B, N, D] (heads merged, before proj). */
  attentionValues?: boolean;
  /** Return the head's input features [B, heads, D] (the penultimate features). */
  features?: boolean;
  signal?: AbortSignal;
}

export interface ForwardResult {
  logits: Float32Array;
  attention?: Float32Array[];
  attentionValues?: Float32Array[];
  features?: Float32Array;
}

export interface BackwardOptions {
  /** Extra gradients at the attention-probability taps, one entry per block (null: none). */
  tapAttention?: (Float32Array | null | undefined)[];
  /** Extra gradients at the A·V taps, one entry per block (null: none). */
  tapAttentionValues?: (Float32Array | null | undefined)[];
  /** Also compute every weight's gradient (training, reconstruction). Default false. */
  weightGrads?: boolean;
  signal?: AbortSignal;
}

export interface BackwardResult {
  /** d loss / d images, [B, C, H, W]. */
  inputGrad: Float32Array;
  /** Weight gradients by timm name, when asked for. */
  weightGrads?: Map<string, Float32Array>;
}

function defaultThreads(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

function checkPositiveInt(name: string, v: unknown, max = 2 ** 30): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) {
    throw new SpdfqError('E_CONFIG', `${name}: expected an integer in [1, ${max}], received ${String(v)}`);
  }
  return v;
}

/** Realm-independent Float32Array test (arrays made by the addon or another vm context
 *  fail `instanceof` in jest and worker threads). */
export function isFloat32Array(v: unknown): v is Float32Array {
  return ArrayBuffer.isView(v) && Object.prototype.toString.call(v) === '[object Float32Array]';
}

export function checkFloat32(name: string, v: unknown, length: number): Float32Array {
  if (!isFloat32Array(v)) {
    throw new SpdfqError('E_TENSOR', `${name}: expected a Float32Array, received ${describe(v)}`);
  }
  if (v.length !== length) {
    throw new SpdfqError('E_TENSOR', `${name}: expected ${length} floats, received ${v.length}`);
  }
  return v;
}

/** An input that must be finite: a NaN or Inf would propagate silently to every output. */
export function checkFinite(name: string, v: Float32Array): void {
  for (let i = 0; i < v.length; i++) {
    if (!Number.isFinite(v[i])) throw new SpdfqError('E_TENSOR', `${name}: value ${i} is ${v[i]}; expected finite numbers`);
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  return typeof v;
}

/** Packs named weights into the engine's canonical order, checking names and lengths. */
export function packWeights(config: VitConfig, weights: WeightMap): Float32Array {
  const map = weights instanceof Map ? weights : new Map(Object.entries(weights));
  const specs = vitParamSpecs(config);
  const total = specs.reduce((s, p) => s + shapeSize(p.shape), 0);
  const out = new Float32Array(total);
  let offset = 0;
  const missing: string[] = [];
  for (const spec of specs) {
    const w = map.get(spec.name);
    const n = shapeSize(spec.shape);
    if (w === undefined) missing.push(spec.name);
    else {
      checkFloat32(`weight '${spec.name}' [${spec.shape.join(', ')}]`, w, n);
      out.set(w, offset);
    }
    offset += n;
  }
  if (missing.length > 0) {
    throw new SpdfqError('E_TENSOR', `missing weights for this config: ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ` and ${missing.length - 8} more` : ''}`);
  }
  const known = new Set(specs.map((s) => s.name));
  const extra = [...map.keys()].filter((k) => !known.has(k));
  if (extra.length > 0) {
    throw new SpdfqError('E_TENSOR', `weights not used by this config (check the config): ${extra.slice(0, 8).join(', ')}`);
  }
  return out;
}

function unpack(specs: ParamSpec[], flat: Float32Array): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  let offset = 0;
  for (const s of specs) {
    const n = shapeSize(s.shape);
    out.set(s.name, flat.slice(offset, offset + n));
    offset += n;
  }
  return out;
}

/** Re-throws a native failure as SpdfqError with the caller's stack (as sharp does). */
function rethrow(err: unknown, callerStack: Error): never {
  const e = err as Error & { code?: string };
  const code = (e.code && e.code.startsWith('E_') ? e.code : 'E_NATIVE') as SpdfqErrorCode;
  const out = new SpdfqError(code, e.message, { cause: err });
  out.stack = `SpdfqError: ${e.message}\n${(callerStack.stack ?? '').split('\n').slice(1).join('\n')}`;
  throw out;
}

export class VitModel {
  readonly config: VitConfig;
  readonly paramSpecs: ParamSpec[];
  /** Where the model runs: 'cpu' or 'cuda:N' (as the native model reports it). */
  readonly device: string;
  private native: NativeVitModel | null;
  private readonly passes = new PassQueue();
  private lastBatch = 0;

  /** Use createVit(); this constructor trusts its arguments. */
  constructor(config: VitConfig, native: NativeVitModel) {
    this.config = config;
    this.paramSpecs = vitParamSpecs(config);
    this.native = native;
    this.device = native.device();
  }

  private get handle(): NativeVitModel {
    if (!this.native) throw new SpdfqError('E_STATE', 'this model was disposed');
    return this.native;
  }

  /** Runs `job` after every earlier call on this model has settled. */
  private enqueue<T>(job: () => Promise<T>): Promise<T> {
    return this.passes.run(job);
  }

  private async withSignal<T>(signal: AbortSignal | undefined, work: () => Promise<T>): Promise<T> {
    if (signal?.aborted) throw new SpdfqError('E_CANCELLED', 'cancelled before the pass started');
    const onAbort = () => this.native?.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await work();
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** The native object, for other native workers (synthesis, quantization) that run whole
   *  loops on this model. Use it only inside `exclusive`, so no queued pass overlaps. */
  nativeHandle(): NativeVitModel {
    return this.handle;
  }

  /** Resolves once every call queued so far has settled. */
  async idle(): Promise<void> {
    await this.passes.idle();
  }

  /** Runs `job` with this model to itself: queued after earlier calls, and later calls wait. */
  exclusive<T>(job: () => Promise<T>): Promise<T> {
    return this.enqueue(job);
  }

  get tokens(): number {
    return tokenCount(this.config);
  }

  imageLength(): number {
    return this.config.channels * this.config.imageHeight * this.config.imageWidth;
  }

  /** Forward on `batch` NCHW images (normalized). The arrays are used in place, not copied. */
  async forward(images: Float32Array, batch: number, options: ForwardOptions = {}): Promise<ForwardResult> {
    const caller = new Error();
    checkPositiveInt('batch', batch);
    const what = `images [${batch}, ${this.config.channels}, ${this.config.imageHeight}, ${this.config.imageWidth}]`;
    checkFloat32(what, images, batch * this.imageLength());
    checkFinite(what, images);
    return this.enqueue(() =>
      this.withSignal(options.signal, async () => {
        const h = this.handle;
        let logits: Float32Array;
        try {
          logits = await h.forward(images, batch);
        } catch (err) {
          rethrow(err, caller);
        }
        this.lastBatch = batch;
        const out: ForwardResult = { logits };
        const depth = this.config.depth;
        if (options.attention) out.attention = Array.from({ length: depth }, (_, l) => h.attention(l));
        if (options.attentionValues) out.attentionValues = Array.from({ length: depth }, (_, l) => h.attentionValues(l));
        if (options.features) out.features = h.features();
        return out;
      }),
    );
  }

  /** Logits only (TrainableModel): forward() without the optional outputs. */
  async forwardLogits(images: Float32Array, batch: number): Promise<Float32Array> {
    return (await this.forward(images, batch)).logits;
  }

  /** Backward with weight gradients, left flat in the native arena (TrainableModel): the
   *  training step's backward, with no per-tensor unpacking. */
  backwardWeights(dlogits: Float32Array): Promise<void> {
    const caller = new Error();
    return this.enqueue(async () => {
      try {
        await this.handle.backward(dlogits, null, null, true);
      } catch (err) {
        rethrow(err, caller);
      }
    });
  }

  /** Backward of the last forward from d loss/d logits [B, K], plus optional tap gradients. */
  async backward(dlogits: Float32Array, options: BackwardOptions = {}): Promise<BackwardResult> {
    const caller = new Error();
    return this.enqueue(() =>
      this.withSignal(options.signal, async () => {
        const c = this.config;
        const B = this.lastBatch;
        if (B === 0) throw new SpdfqError('E_STATE', 'backward needs a completed forward pass on this model first');
        checkFloat32(`dlogits [${B}, ${c.numClasses}]`, dlogits, B * c.numClasses);
        checkFinite(`dlogits [${B}, ${c.numClasses}]`, dlogits);
        const N = this.tokens;
        const taps = (name: string, list: (Float32Array | null | undefined)[] | undefined, len: number, shape: string) => {
          if (list === undefined) return null;
          if (!Array.isArray(list) || list.length !== c.depth) {
            throw new SpdfqError('E_TENSOR', `${name}: expected an array of ${c.depth} entries (one per block), received ${Array.isArray(list) ? list.length : describe(list)}`);
          }
          return list.map((t, l) => (t == null ? null : checkFloat32(`${name}[${l}] ${shape}`, t, len)));
        };
        const ta = taps('tapAttention', options.tapAttention, B * c.numHeads * N * N, `[${B}, ${c.numHeads}, ${N}, ${N}]`);
        const tv = taps('tapAttentionValues', options.tapAttentionValues, B * N * c.embedDim, `[${B}, ${N}, ${c.embedDim}]`);
        const h = this.handle;
        let inputGrad: Float32Array;
        try {
          inputGrad = await h.backward(dlogits, ta, tv, options.weightGrads === true);
        } catch (err) {
          rethrow(err, caller);
        }
        const out: BackwardResult = { inputGrad };
        if (options.weightGrads) out.weightGrads = unpack(this.paramSpecs, h.getGrads());
        return out;
      }),
    );
  }

  /** A copy of the weights by timm name. */
  getWeights(): Map<string, Float32Array> {
    return unpack(this.paramSpecs, this.handle.getParams());
  }

  /** Replaces all weights (same names and shapes as createVit). Waits for queued passes. */
  async setWeights(weights: WeightMap): Promise<void> {
    const packed = packWeights(this.config, weights);
    return this.enqueue(async () => this.handle.setParams(packed));
  }

  /** Bytes of activation memory (kept for backward, plus scratch) that `batch` images need
   *  (host memory on the CPU, device memory on CUDA). */
  activationBytes(batch: number): number {
    return this.handle.activationBytes(checkPositiveInt('batch', batch));
  }

  /** Largest batch whose activations fit in `bytes`. */
  maxBatch(bytes: number): number {
    const perImage = this.activationBytes(2) - this.activationBytes(1);
    const fixed = this.activationBytes(1) - perImage;
    let b = Math.max(0, Math.floor((bytes - fixed) / perImage));
    while (b > 0 && this.activationBytes(b) > bytes) b--;
    return b;
  }

  async setThreads(threads: number): Promise<void> {
    checkPositiveInt('threads', threads, 1024);
    return this.enqueue(async () => this.handle.setThreads(threads));
  }

  /** Frees the native memory; the model cannot be used afterwards. */
  async dispose(): Promise<void> {
    await this.passes.idle();
    this.native?.dispose();
    this.native = null;
  }
}

/** Builds a native ViT from a config and weights named as in timm (see vitParamSpecs). */
export async function createVit(config: VitConfigInput, weights: WeightMap, options: VitOptions = {}): Promise<VitModel> {
  const full = completeVitConfig(config);
  checkParamMemory(full, 'createVit');
  const params = packWeights(full, weights);
  const threads = options.threads === undefined ? defaultThreads() : checkPositiveInt('threads', options.threads, 1024);
  const device = resolveDevice(options.device ?? 'cpu');
  // On CUDA the native default (the device's free memory) stands unless a budget is given.
  const budget = options.activationBudgetBytes ?? (device.kind === 'cpu' ? Math.floor(os.totalmem() / 2) : undefined);
  if (budget !== undefined && (typeof budget !== 'number' || !(budget >= 1))) {
    throw new SpdfqError('E_CONFIG', `activationBudgetBytes: expected a positive number, received ${String(budget)}`);
  }
  const addon = nativeAddon();
  let native: NativeVitModel;
  try {
    native = new addon.VitModel(full, params, threads, device.name);
    if (options.reference) native.setReference(true);
    if (budget !== undefined) native.setActivationBudget(Math.floor(budget));
  } catch (err) {
    rethrow(err, new Error());
  }
  return new VitModel(full, native);
}

/** Refuses, before allocating, a model whose weights alone would not fit this machine's
 *  memory (a typo like embedDim: 76800 would otherwise climb through gigabytes first). */
export function checkParamMemory(config: VitConfig, what: string): void {
  const count = vitParamSpecs(config).reduce((s, p) => s + shapeSize(p.shape), 0);
  const bytes = count * 4;
  const limit = os.totalmem() / 2;
  if (bytes > limit) {
    throw new SpdfqError('E_MEMORY', `${what}: the config has ${count.toExponential(3)} parameters (${(bytes / 2 ** 30).toFixed(1)} GiB of float32 weights), over half of this machine's ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB; expected a smaller model (check embedDim, mlpDim, depth, numClasses)`);
  }
}

/** Random weights with timm-like scales (truncated-normal-ish std 0.02 linear weights,
 *  LayerNorm 1/0) — for benchmarks and tests; deterministic for a seed. */
export function randomVitWeights(config: VitConfigInput, seed = 1): Map<string, Float32Array> {
  const full = completeVitConfig(config);
  checkParamMemory(full, 'randomVitWeights');
  return randomNamedWeights(vitParamSpecs(full), seed);
}
