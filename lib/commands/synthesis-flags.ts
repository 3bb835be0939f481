// Synthesis flags that more than one command takes, validated once (expected vs received)
// so that a bad value fails before any work.

import { SpdfqError } from '../errors';
import { APA_ALPHA_MAX, SynthesisOptions } from '../synth/options';

/** `--alpha`: SPDFQ's APA weight α1, or nothing when the flag is absent. */
export function apaAlphaFlag(alpha: number | undefined): Pick<SynthesisOptions, 'apa'> | undefined {
  if (alpha === undefined) return undefined;
  // APA off is a method choice (`--method`, or the ablation's variants), not a weight of 0.
  if (!(alpha > 0 && alpha <= APA_ALPHA_MAX)) throw new SpdfqError('E_CONFIG', `--alpha: expected a number in (0, ${APA_ALPHA_MAX}], received ${alpha}`);
  return { apa: { alpha } };
}
