// The plain config the native loop reads (native/binding/synth_worker.cc parses exactly
// these fields; test/cli.synth-option.test.ts checks the two lists agree), made from the
// resolved options. No defaults here: every value comes from ResolvedSynthesisOptions.

import { SynthModelShape } from './model-shape';
import { NativeSynthConfig } from '../native';
import { shardRange } from '../shard';
import { Preprocess, PSAQ_TV_REFERENCE_ELEMENTS, ResolvedSynthesisOptions } from './option-types';

/** The valid normalized range per channel: pixels in [0, 1] through (x − mean)/std. */
export function clampRange(p: Preprocess): { lo: number[]; hi: number[] } {
  return { lo: p.mean.map((m, c) => (0 - m) / p.std[c]), hi: p.mean.map((m, c) => (1 - m) / p.std[c]) };
}

/** The plain config the native loop reads (methods spdfq, psaq, inversion). */
export function nativeSynthConfig(model: SynthModelShape, o: ResolvedSynthesisOptions): NativeSynthConfig {
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
  const shard = o.shard ? shardRange(o.images, o.shard) : { begin: 0, end: o.images };
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
    shardBegin: shard.begin,
    shardEnd: shard.end,
  };
}
