// Synthesis options: the entry point for the rest of the code. The shapes and every
// default with its source are in option-types.ts (SYNTH_DEFAULTS), each part's resolution
// and validation in option-parts.ts, and the plain native config in native-config.ts.

import { SynthModelShape } from './model-shape';
import { bad, known, oneOf, real } from './option-checks';
import { resolveApa, resolveMsr, resolvePreprocess, resolvePse, resolveReal, resolveSchedule, resolveSl, resolveTargets, resolveTv } from './option-parts';
import { ResolvedSynthesisOptions, SYNTH_DEFAULTS, SYNTH_METHODS, SynthesisOptions, SynthMethod } from './option-types';
import { resolveImageShard } from './shard-option';

export * from './option-types';
export { deepHalfBlocks } from './option-parts';
export { clampRange, nativeSynthConfig } from './native-config';

const TOP_KEYS = [
  'method', 'images', 'iters', 'rounds', 'warmupIters', 'rollFractions', 'seed', 'lr', 'betas', 'adamEps', 'initStd', 'flip',
  'preprocess', 'targets', 'targetSampling', 'ceWeight', 'apa', 'msr', 'sl', 'tv', 'pse', 'memoryBudgetBytes', 'real',
  'shard', 'signal', 'onProgress',
] as const;

/** The components each method has: SPDFQ's three, PSAQ-ViT's entropy. Which of them run by
 *  default is SYNTH_DEFAULTS' choice (SPDFQ's soft labels are off unless asked for). */
export function methodComponents(method: SynthMethod): { apa: boolean; msr: boolean; sl: boolean; pse: boolean } {
  return { apa: method === 'spdfq', msr: method === 'spdfq', sl: method === 'spdfq', pse: method === 'psaq' };
}

/** Settings applied to several methods at once (compare's overrides): a component given as
 *  an object adjusts that component where the method runs it, without switching it on
 *  where the method does not (an `apa: { alpha }` override must not add APA to PSAQ-ViT). */
export function overridesForMethod<T extends Partial<SynthesisOptions>>(method: SynthMethod, overrides: T): T {
  const on = methodComponents(method);
  const out: Partial<SynthesisOptions> = { ...overrides };
  for (const k of ['apa', 'msr', 'sl', 'pse'] as const) {
    const v = overrides[k];
    if (v && typeof v === 'object' && (v as { enabled?: boolean }).enabled === undefined) (out as Record<string, unknown>)[k] = { ...v, enabled: on[k] };
  }
  return out as T;
}

/** Fills every default for `options.method` and validates against the model. */
export function resolveSynthesisOptions(model: SynthModelShape, options: SynthesisOptions = {}): ResolvedSynthesisOptions {
  if (options === null || typeof options !== 'object') bad('(options)', 'an object', options);
  known('(options)', options, TOP_KEYS);
  const method = oneOf('method', options.method ?? SYNTH_DEFAULTS.method, SYNTH_METHODS);
  const on = methodComponents(method);
  const schedule = resolveSchedule(method, options);
  const apa = resolveApa(model, options.apa, on.apa);
  const sl = resolveSl(options.sl, on.sl);
  const ceWeight = real('ceWeight', options.ceWeight ?? SYNTH_DEFAULTS.ceWeight, 0, 1e6);
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) bad('signal', 'an AbortSignal', typeof options.signal);
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') bad('onProgress', 'a function', typeof options.onProgress);
  if (apa.enabled && !sl.enabled && ceWeight === 0 && apa.alpha === 'auto') bad('apa.alpha', 'a number when there is no classification loss (ceWeight 0) to balance against', 'auto');
  const resolved: ResolvedSynthesisOptions = {
    method,
    ...schedule,
    preprocess: resolvePreprocess(model, options.preprocess),
    targets: resolveTargets(model, schedule.images, options.targets as ArrayLike<number> | undefined),
    targetSampling: oneOf('targetSampling', options.targetSampling ?? SYNTH_DEFAULTS.targetSampling, ['uniform', 'balanced'] as const),
    ceWeight,
    apa,
    msr: resolveMsr(model, options.msr, on.msr),
    sl,
    tv: resolveTv(method, options.tv),
    pse: resolvePse(model, options.pse, on.pse),
    memoryBudgetBytes: real('memoryBudgetBytes', options.memoryBudgetBytes ?? SYNTH_DEFAULTS.memoryBudgetBytes, 1, Number.MAX_SAFE_INTEGER),
    real: resolveReal(method, options.real),
  };
  const shard = resolveImageShard(resolved, options.shard);
  return shard ? { ...resolved, shard } : resolved;
}
