// The exact shape of the compiled addon (build/Release/spdfq_native.node), declared once,
// and its loader. Everything here is unvalidated plumbing: lib/vit.ts, lib/synth and
// lib/quant validate before calling.

import * as path from 'path';
import { SpdfqError } from '../errors';
import type { CalibrationRequest, ChannelQuantizer, ReconstructProgress, SearchSpec, StageReport, SiteQuantizer, TensorQuantizer, WeightQuantizer } from './quant-types';
import type { NativeStepLosses, NativeSynthConfig, NativeSynthKernels, NativeSynthPlan, NativeSynthProgress, NativeSynthResult } from './synth-types';

export type * from './quant-types';
export type * from './synth-types';

export interface NativeParamInfo {
  name: string;
  shape: number[];
  offset: number;
  size: number;
}

/** The quantization hooks every model class has (native/binding/quant_js.h): calibrate
 *  activation sites off the event loop, install activation and weight quantizers. */
export interface NativeQuantHooks {
  calibrate(images: Float32Array, n: number, chunk: number, specs: CalibrationRequest[], onQuantizedModel?: boolean): Promise<(TensorQuantizer | ChannelQuantizer)[]>;
  setActQuant(sites: SiteQuantizer[] | null): void;
  setWeightQuant(layers: WeightQuantizer[] | null): void;
  /** Block reconstruction off the event loop (native/binding/reconstruct_worker.h): a ViT's
   *  blocks, a Swin's blocks and patch mergings (native/quant/reconstruct*.cc). */
  reconstruct(images: Float32Array, n: number, config: NativeReconstructConfig, onProgress?: (p: ReconstructProgress) => void): Promise<StageReport[]>;
}

/** reconstruct()'s options, every one given (lib/quant/quant-config.ts resolves the defaults). */
export interface NativeReconstructConfig {
  iters: number; lr: number; batch: number; seed: number; rounding: 'ste' | 'adaround'; roundLr: number; roundReg: number; roundWarmup: number;
  qdrop: number; holdout: number; checkEvery: number; embed: boolean; head: boolean; learnSteps: boolean; stepLr: number;
}

/** Plain config object as parsed by native/binding (all fields present, camelCase). */
export interface NativeVitModel extends NativeQuantHooks {
  forward(images: Float32Array, batch: number): Promise<Float32Array>;
  backward(
    dlogits: Float32Array,
    tapAttention: (Float32Array | null)[] | null,
    tapAttentionValues: (Float32Array | null)[] | null,
    weightGrads: boolean,
  ): Promise<Float32Array>;
  attention(block: number): Float32Array;
  attentionValues(block: number): Float32Array;
  features(): Float32Array;
  getParams(): Float32Array;
  setParams(params: Float32Array): void;
  getGrads(): Float32Array;
  paramInfo(): NativeParamInfo[];
  activationBytes(batch: number): number;
  setThreads(threads: number): void;
  setReference(reference: boolean): void;
  setActivationBudget(bytes: number): void;
  cancel(): void;
  dispose(): void;
  /** Where this model runs: 'cpu' or 'cuda:N'. */
  device(): string;

  // Quantization hooks (native/binding/quant_binding.cc).

  getQuantParams(): Float32Array;
  setIntegerMode(on: boolean): void;
}

/** The Swin Transformer's CPU model (native/binding/swin_model_wrap.cc); config as lib/swin.ts completes it. */
export interface NativeSwinModel extends NativeQuantHooks {
  forward(images: Float32Array, batch: number): Promise<Float32Array>;
  /** tapAttention: one entry per block (stage-major), [B, nW, H, N, N], or null. */
  backward(dlogits: Float32Array, tapAttention: (Float32Array | null)[] | null, weightGrads: boolean): Promise<Float32Array>;
  getGrads(): Float32Array;
  /** The flat parameter arena (swinParamInfo order), copied out and in. */
  getParams(): Float32Array;
  setParams(params: Float32Array): void;
  output(name: string): { shape: number[]; data: Float32Array };
  /** One reconstruction stage's loss mean((stage(input) − target)²) on the installed
   *  quantizers and its gradient in the stage's trained tensors (parameter layout, zero
   *  elsewhere), as a training step computes them; `stage` as StageReport.stage. Synchronous:
   *  for tests. */
  stageGradient(stage: string, input: Float32Array, target: Float32Array, batch: number): { loss: number; grads: Float32Array };
  activationBytes(batch: number): number;
  setThreads(threads: number): void;
  setReference(reference: boolean): void;
  cancel(): void;
  dispose(): void;
}

/** One CUDA device as the driver reports it (cudaDevices()). */
export interface CudaDeviceInfo {
  index: number;
  name: string;
  /** 'major.minor', e.g. '9.0' for H100/H200. */
  computeCapability: string;
  memoryBytes: number;
  multiprocessors: number;
  /** The CUDA backend needs compute capability 8.0 (sm_80) or newer. */
  usable: boolean;
}

export interface CudaDeviceList {
  /** Usable devices (compute capability ≥ 8.0). */
  count: number;
  /** Every device the driver reports, usable or not. */
  devices: CudaDeviceInfo[];
  /** Why no device is usable ('' when count > 0): no CUDA backend in this build, no
   *  driver (or one older than the CUDA runtime the addon was built with), no device. */
  reason: string;
}

export type GemmVariantName = 'ref' | 'avx2' | 'avx512' | 'auto';

export interface NativeAddon {
  /** `device`: 'cpu' (default) or 'cuda:N'; a CUDA model ignores `threads`. */
  VitModel: new (config: object, params: Float32Array, threads: number, device?: string) => NativeVitModel;
  SwinModel: new (config: object, params: Float32Array, threads: number) => NativeSwinModel;
  /** The Swin parameter layout of a (completed) config, torchvision state_dict order. */
  swinParamInfo(config: object): NativeParamInfo[];
  cpuFeatures(): { avx2: boolean; avx512: boolean; avx512vnni: boolean; avxvnni: boolean; gemm: string };
  /** The engines compiled into this addon: ['cpu'] or ['cpu', 'cuda']. */
  backends(): string[];
  /** The CUDA devices this process can use; never throws (no driver: count 0 and the reason). */
  cudaDevices(): CudaDeviceList;
  /** C = alpha·op(A)·op(B) + beta·C, row-major; returns the best time in seconds over `repeats`. */
  gemm(
    variant: GemmVariantName,
    transA: boolean,
    transB: boolean,
    M: number,
    N: number,
    K: number,
    alpha: number,
    A: Float32Array,
    lda: number,
    B: Float32Array,
    ldb: number,
    beta: number,
    C: Float32Array,
    ldc: number,
    repeats?: number,
  ): number;
  crossEntropy(
    logits: Float32Array,
    targets: Float32Array | Int32Array,
    batch: number,
    classes: number,
    soft: boolean,
  ): { loss: number; dlogits: Float32Array };
  elementwise(fn: string, x: Float32Array): Float32Array;

  // Synthesis (native/binding/synth_worker.cc, synth_kernels.cc).

  synthesize(
    model: NativeVitModel | NativeSwinModel,
    config: NativeSynthConfig,
    onProgress?: (p: NativeSynthProgress) => void,
  ): { promise: Promise<NativeSynthResult>; cancel: () => void };
  synthObjective(
    model: NativeVitModel | NativeSwinModel,
    config: NativeSynthConfig,
    images: Float32Array,
    step: number,
    alpha: number,
    wantGrad: boolean,
  ): Promise<{ losses: NativeStepLosses; grad: Float32Array | null }>;
  synthPlan(model: NativeVitModel | NativeSwinModel, config: NativeSynthConfig): NativeSynthPlan;
  /** The fields the native parser reads, in its order (checked against nativeSynthConfig). */
  synthConfigKeys(): string[];
  synthKernels: NativeSynthKernels;

  // Quantization (native/binding/quant_binding.cc).

  quantSearch(values: Float32Array, rows: number, cols: number, axis: -1, spec: SearchSpec): TensorQuantizer;
  quantSearch(values: Float32Array, rows: number, cols: number, axis: 0 | 1, spec: SearchSpec): ChannelQuantizer;
  fakeQuant(values: Float32Array, quantizer: TensorQuantizer): Float32Array;
  /** AdaRound's soft rounding per element (native/quant/reconstruct.h), for tests. */
  softRounding(v: Float32Array, base: Float32Array, quantizer: TensorQuantizer, beta: number): { weight: Float32Array; dWeight: Float32Array; reg: Float64Array; dReg: Float32Array };
  /** LSQ's d loss/d step (and d loss/d x) at a uniform quantizer, for tests (core/quantizer.h). */
  lsqStepGradient(x: Float32Array, grad: Float32Array, quantizer: TensorQuantizer): { step: number; grad: Float32Array };
  qgemmBench(kind: 'int8' | 'int4w', size: number, repeats: number): number;
}

let cached: NativeAddon | undefined;

/** Loads the addon once; a missing build fails with what was tried and what to do. */
export function nativeAddon(): NativeAddon {
  if (cached) return cached;
  const root = path.resolve(__dirname, __dirname.includes(`${path.sep}dist${path.sep}`) ? '../../..' : '../..');
  // SPDFQ_ADDON points at another build (e.g. a developer's separate build folder).
  const candidates = [
    ...(process.env.SPDFQ_ADDON ? [path.resolve(process.env.SPDFQ_ADDON)] : []),
    path.join(root, 'build', 'Release', 'spdfq_native.node'),
    path.join(root, 'build', 'Debug', 'spdfq_native.node'),
  ];
  const errors: string[] = [];
  for (const file of candidates) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      cached = require(file) as NativeAddon;
      return cached;
    } catch (err) {
      errors.push(`${file}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new SpdfqError(
    'E_NATIVE',
    `could not load the spdfq-native addon. Tried:\n  ${errors.join('\n  ')}\n` +
      'Build it with `npm install` (or `npm run build:native`) in the package folder; it needs cmake ≥ 3.18 and a C++17 compiler. ' +
      'Where npm skips dependencies\' install scripts (npm 12 does unless allowed), allow ours and build: `npm approve-scripts spdfq-native && npm rebuild spdfq-native`.',
  );
}
