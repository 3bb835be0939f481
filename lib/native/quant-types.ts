// Data shapes of the addon's quantization entry points (native/binding/quant_binding.cc).

export type QuantKindName = 'uniform' | 'log2' | 'none';
/** native/core/act_sites.h; `reduce_in` is a Swin's patch-merging reduction input. */
export type SiteName = 'patch_in' | 'qkv_in' | 'q' | 'k' | 'v' | 'probs' | 'proj_in' | 'fc1_in' | 'fc2_in' | 'head_in' | 'reduce_in';

/** One per-tensor quantizer: uniform q = clamp(round(x/scale) + zero, qmin, qmax), or log√2 (scale = Δ). */
export interface TensorQuantizer {
  kind: QuantKindName;
  bits: number;
  scale: number;
  zero: number;
  qmin: number;
  qmax: number;
}

/** Per-channel quantizers sharing kind, bits and grid. */
export interface ChannelQuantizer {
  kind: QuantKindName;
  bits: number;
  qmin: number;
  qmax: number;
  scales: Float32Array;
  zeros: Float32Array;
}

/** A range search, every field set (quant-config.ts holds the defaults). */
export interface SearchSpec {
  kind: QuantKindName;
  bits: number;
  /** Zero point 0 on the signed grid (TensorRT); else asymmetric on the unsigned grid. */
  symmetric: boolean;
  method: 'minmax' | 'percentile';
  /** Candidates of the percentile search (MinMax is always one too). */
  percentiles: number[];
}

export interface CalibrationRequest extends SearchSpec {
  site: SiteName;
  /** The block of a block site (stage-major for a Swin), the merge's stage for
   *  reduce_in; absent for patch_in and head_in. */
  block?: number;
  perChannel: boolean;
}

export interface SiteQuantizer extends TensorQuantizer {
  site: SiteName;
  block?: number;
}

export interface WeightQuantizer extends ChannelQuantizer {
  /** timm weight name, e.g. `blocks.0.attn.qkv.weight`. */
  name: string;
}

export interface ReconstructProgress {
  /** The stage's position among `blocks` stages (patch embedding, blocks, head). */
  block: number;
  blocks: number;
  /** 'patch_embed', 'blocks.3' or 'head' (a Swin's: as StageReport.stage). */
  stage: string;
  iter: number;
  iters: number;
  loss: number;
}

/** One reconstruction stage's result: its output MSE against the fp model over all
 *  calibration images before and after training, and the iteration whose weights it keeps
 *  (the last one unless `holdout` is on). */
export interface StageReport {
  /** 'patch_embed', 'blocks.3' or 'head'; a Swin's 'features.0' (patch embedding),
   *  'features.1.0' (a block), 'features.2' (a patch merging) or 'head'. */
  stage: string;
  /** The block index of a block stage (a Swin's: stage-major), −1 for the others. */
  block: number;
  mseBefore: number;
  mseAfter: number;
  itersKept: number;
  /** With `learnSteps`: the block's Linear-input sites and their learned steps. */
  steps: { site: SiteName; scale: number }[];
}
