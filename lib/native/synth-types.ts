// Data shapes of the addon's synthesis entry points (native/binding/synth_worker.cc,
// synth_kernels.cc). Unvalidated plumbing: lib/synth/options.ts validates and fills every
// field before anything is passed.

/** One optimization round: its own cosine schedule (warm-up steps) and jitter limit. */
export interface NativeSynthRound {
  iters: number;
  warmup: number;
  rollMaxH: number;
  rollMaxW: number;
}

/** Plain, fully defaulted config read by parse_synth_config (every field required). */
export interface NativeSynthConfig {
  images: number;
  seed: number;
  rounds: NativeSynthRound[];
  lr: number;
  beta1: number;
  beta2: number;
  adamEps: number;
  initStd: number;
  flip: boolean;
  clampLo: number[];
  clampHi: number[];
  targets: number[];
  balancedTargets: boolean;
  cls: 'none' | 'hard' | 'soft';
  clsWeight: number;
  softLogitMin: number;
  softLogitMax: number;
  apa: boolean;
  apaAlpha: number;
  apaComponents: number;
  priorStdMin: number;
  priorStdMaxFraction: number;
  apaBlocks: number[];
  apaDepthWeight: boolean;
  apaQuery: 'class' | 'mean';
  apaPriorPerBlock: boolean;
  apaLoss: 'mse' | 'relative-mse' | 'kl';
  msr: boolean;
  msrMaxRegions: number;
  msrGrid: number;
  msrBoxMin: number;
  msrBoxMax: number;
  msrFlip: boolean;
  msrResampleClasses: boolean;
  tv: 'none' | 'l2' | 'l1';
  tvWeight: number;
  tvTarget: boolean;
  tvTargetMin: number;
  tvTargetMax: number;
  tvTargetScale: number;
  pse: boolean;
  pseWeight: number;
  kdeBandwidth: number;
  kdePoints: number;
  pseBlocks: number[];
  memoryBudget: number;
  /** The images this process optimizes, [shardBegin, shardEnd) of `images`. */
  shardBegin: number;
  shardEnd: number;
}

export interface NativeStepLosses {
  total: number;
  apa: number;
  cls: number;
  tv: number;
  pse: number;
  targetProb: number;
}

export interface NativeSynthProgress {
  step: number;
  totalSteps: number;
  round: number;
  lr: number;
  alpha: number;
  losses: NativeStepLosses;
  imagesPerSecond: number;
  seconds: number;
  /** < 1 while `step` is under way (large batches report each micro-batch). */
  stepFraction: number;
}

export interface NativeSynthPlan {
  chunkImages: number;
  regionBatch: number;
  bytes: number;
}

export interface NativeSynthResult {
  images: Float32Array;
  targets: Int32Array;
  targetLogits: Float32Array;
  cellClasses: Int32Array;
  cellLogits: Float32Array;
  /** One table per prior group: a ViT's one (group 0), a Swin's aligned stages (group = stage;
   *  windowH/windowW > 0: window priors tiling the stage's grid). Empty without APA. */
  priors: { maps: Float32Array; counts: Int32Array; images: number; sets: number; heads: number; gridH: number; gridW: number; windowH: number; windowW: number; group: number }[];
  history: Record<'total' | 'apa' | 'cls' | 'tv' | 'pse' | 'targetProb' | 'lr', Float64Array>;
  alpha: number;
  stepsDone: number;
  seconds: number;
  plan: NativeSynthPlan;
  stop: null | { code: 'E_CANCELLED' | 'E_NUMERIC'; part: string; step: number; message: string };
}

export interface NativeSynthKernels {
  attentionPriors(
    images: number, sets: number, heads: number, gridH: number, gridW: number,
    components: number, stdMin: number, stdMaxFraction: number, seed: number,
  ): { maps: Float32Array; counts: Int32Array; components: Float32Array };
  apaLoss(att: Float32Array, priors: Float32Array, B: number, H: number, N: number, prefix: number, query: 'class' | 'mean', form: 'mse' | 'relative-mse' | 'kl'): { loss: number; grad: Float32Array };
  apaMaps(att: Float32Array, B: number, H: number, N: number, prefix: number, query: 'class' | 'mean'): Float32Array;
  patchSimilarityEntropy(
    av: Float32Array, B: number, N: number, D: number, H: number, prefix: number,
    bandwidth: number, points: number, lo?: number, hi?: number,
  ): { entropy: number; perImage: Float64Array; grad: Float32Array; lo: number; hi: number };
  sampleRegions(B: number, H: number, W: number, maxRegions: number, grid: number, boxMin: number, boxMax: number, flip: boolean, seed: number): Int32Array;
  cropResize(image: Float32Array, C: number, H: number, W: number, box: [number, number, number, number, number], outH: number, outW: number): Float32Array;
  cropResizeBackward(dout: Float32Array, C: number, H: number, W: number, box: [number, number, number, number, number], outH: number, outW: number): Float32Array;
  totalVariation(x: Float32Array, B: number, C: number, H: number, W: number, form: 'l2' | 'l1'): { loss: number; grad: Float32Array };
  softLabels(K: number, classes: Int32Array, logits: Float32Array): Float32Array;
  adamStep(x: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, t: number, lr: number, beta1: number, beta2: number, eps: number): void;
  cosineLr(step: number, iters: number, warmup: number, base: number): number;
  augment(x: Float32Array, B: number, C: number, H: number, W: number, flip: boolean, dy: number, dx: number): Float32Array;
  augmentBackward(dout: Float32Array, B: number, C: number, H: number, W: number, flip: boolean, dy: number, dx: number): Float32Array;
  jitterPrior(prior: Float32Array, gridH: number, gridW: number, patch: number, flip: boolean, dy: number, dx: number): Float32Array;
}
