// Data-free calibration image synthesis: SPDFQ and the baselines behind one interface.
export { synthesize, synthesisObjective, synthesisPlan, noiseImages } from './synthesize';
export type { SynthesisResult, StepLossRecord } from './synthesize';
export {
  resolveSynthesisOptions,
  nativeSynthConfig,
  clampRange,
  deepHalfBlocks,
  IMAGENET_PREPROCESS,
  DEFAULT_MEMORY_BUDGET,
  SYNTH_METHODS,
} from './options';
export type {
  SynthesisOptions,
  ResolvedSynthesisOptions,
  SynthesisProgress,
  SynthMethod,
  ApaOptions,
  MsrOptions,
  SlOptions,
  TvOptions,
  PseOptions,
  RealImageOptions,
  Preprocess,
} from './options';
export { SynthesisStoppedError } from './errors';
export { writeSynthesisOutputs, readSynthesisOutputs, imageGridPng, imageToBytes } from './writers';
export { decodePng, encodePng } from '../image/png';
export { encodeNpy, decodeNpy } from '../image/npy';
export { readIdx, parseIdx } from '../image/idx';
export { classAttentionMaps } from './attention-maps';
