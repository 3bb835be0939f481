// Public API of spdfq-native.
export { createVit, randomVitWeights, packWeights, VitModel } from './vit';
export type { VitOptions, ForwardOptions, ForwardResult, BackwardOptions, BackwardResult, WeightMap } from './vit';
export { completeVitConfig, vitParamSpecs, tokenCount, patchGrid, prefixTokens } from './vit-config';
export type { VitConfig, VitConfigInput, ParamSpec } from './vit-config';
export { SpdfqError } from './errors';
export type { SpdfqErrorCode } from './errors';
export { nativeAddon } from './native';

/** Compute backends this build of the addon supports ('cpu', and 'cuda' when built with CUDA). */
export function backends(): string[] {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('./native') as typeof import('./native')).nativeAddon().backends();
}
