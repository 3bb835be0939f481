// The SPDFQ ablation of the paper's component table: the eight APA/MSR/SL on-off variants
// and the synthesis options each one runs with. Kept apart from compare.ts so that merging
// results (merge.ts) needs only these names, not the engine.

import type { SynthesisOptions } from '../synth/options';

/** Synthesis settings a comparison applies to every synthesized row and ablation variant. */
export type SynthesisOverrides = Omit<Partial<SynthesisOptions>, 'method' | 'images' | 'iters' | 'seed' | 'preprocess' | 'signal'>;

export interface AblationVariant {
  name: string;
  apa: boolean;
  msr: boolean;
  sl: boolean;
}

/** The SPDFQ ablation of the paper's component table (W4A4 DeiT-S). */
export const ABLATION = [
  { name: 'none', apa: false, msr: false, sl: false },
  { name: 'APA', apa: true, msr: false, sl: false },
  { name: 'MSR', apa: false, msr: true, sl: false },
  { name: 'SL', apa: false, msr: false, sl: true },
  { name: 'APA+MSR', apa: true, msr: true, sl: false },
  { name: 'APA+SL', apa: true, msr: false, sl: true },
  { name: 'MSR+SL', apa: false, msr: true, sl: true },
  { name: 'APA+MSR+SL', apa: true, msr: true, sl: true },
] as const satisfies readonly AblationVariant[];

export type AblationName = (typeof ABLATION)[number]['name'];
export const ABLATION_NAMES: readonly AblationName[] = ABLATION.map((v) => v.name);

/** One ablation variant's component switches over the run's synthesis overrides. A component
 *  that is on keeps the run's own settings of it (`--alpha` sets `apa: { alpha }`): a bare
 *  `apa: true` would replace them with the defaults and silently measure another protocol. */
export function ablationSynthesis(synthesis: SynthesisOverrides | undefined, v: AblationVariant): Pick<SynthesisOptions, 'apa' | 'msr' | 'sl'> {
  const component = <T extends object>(own: boolean | T | undefined, on: boolean): boolean | T => (!on ? false : typeof own === 'object' ? { ...own, enabled: true } : true);
  return { apa: component(synthesis?.apa, v.apa), msr: component(synthesis?.msr, v.msr), sl: component(synthesis?.sl, v.sl) };
}
