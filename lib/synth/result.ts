// What every synthesis method returns: the images with their targets, the SPDFQ parts'
// draws (region classes, soft logits, attention priors) and the per-step losses.

import type { NativeSynthPlan } from '../native';
import type { Preprocess, ResolvedSynthesisOptions, SynthMethod } from './options';

export interface StepLossRecord {
  step: number;
  round: number;
  lr: number;
  total: number;
  apa: number;
  cls: number;
  tv: number;
  pse: number;
  /** Mean softmax probability of each (jittered) whole image's own class. */
  targetProb: number;
}

export interface SynthesisResult {
  method: SynthMethod;
  /** [B, C, H, W] in the model's normalized input space. */
  images: Float32Array;
  shape: [number, number, number, number];
  /** Each image's own class; −1 where there is none (noise, unlabelled real images). */
  targets: Int32Array;
  /** MSR: the class of each (image, cell) of the grid, [B, grid²] ('fixed' region classes). */
  regionClasses: Int32Array | null;
  /** SL: the logit Z of each image's own class [B], and of each cell's class [B, grid²]. */
  softLogits: { own: Float32Array; cells: Float32Array | null } | null;
  /** APA priors [B, sets, heads, gridH, gridW] and the 1-based blocks they align. */
  priors: { maps: Float32Array; shape: [number, number, number, number, number]; blocks: number[]; query: 'class' | 'mean' } | null;
  /** A Swin's APA priors, one table per aligned stage (docs/swin.md, "Stage: synthesis"):
   *  maps over the stage's token grid [B, sets, heads, gridH, gridW], each window tile of
   *  `window` tokens its own mixture, and the 1-based (stage-major) blocks aligned to them.
   *  Absent for a ViT (`priors` above), null without APA. */
  windowPriors?: { stage: number; maps: Float32Array; shape: [number, number, number, number, number]; window: [number, number]; blocks: number[] }[] | null;
  /** One record per completed step. */
  losses: StepLossRecord[];
  /** α1 used for APA (null when APA is off). */
  alpha: number | null;
  stepsDone: number;
  totalSteps: number;
  seconds: number;
  /** Micro-batching chosen for the memory budget (native methods). */
  plan: NativeSynthPlan | null;
  preprocess: Preprocess;
  /** Real images: the file (and index) each image came from. */
  sources: string[] | null;
  options: ResolvedSynthesisOptions;
}
