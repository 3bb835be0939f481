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

/** `--synth-option path=value` (repeatable): any synthesis option by its dotted API path
 *  (`apa.loss=kl`, `tv.weight=0.5`, `msr=false`), the value read as JSON where it parses
 *  (numbers, booleans, lists) and as a string otherwise. Option names and values are
 *  validated with the rest of the synthesis options, whose messages name the same path. */
export function synthOptionFlags(items: string[] | undefined): Partial<SynthesisOptions> {
  return pathOptions('--synth-option', items) as Partial<SynthesisOptions>;
}

/** `flag path=value` items (repeatable) as a nested options object (see synthOptionFlags). */
export function pathOptions(flag: string, items: string[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const item of items ?? []) {
    const m = /^([A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)*)=(.*)$/.exec(String(item));
    if (!m) throw new SpdfqError('E_CONFIG', `${flag}: expected path=value (e.g. apa.loss=kl), received '${item}'`);
    const keys = m[1].split('.');
    let value: unknown;
    try {
      value = JSON.parse(m[2]);
    } catch {
      value = m[2];
    }
    let node = out;
    for (const k of keys.slice(0, -1)) {
      const next = node[k];
      if (next === true) node[k] = {};
      else if (next !== undefined && (typeof next !== 'object' || next === null || Array.isArray(next))) {
        throw new SpdfqError('E_CONFIG', `${flag} ${m[1]}: '${k}' was already set to ${JSON.stringify(next)}, which has no fields`);
      }
      node = (node[k] ??= {}) as Record<string, unknown>;
    }
    const last = keys[keys.length - 1];
    if (last in node) throw new SpdfqError('E_CONFIG', `${flag} ${m[1]}: given twice`);
    node[last] = value;
  }
  return out;
}

/** Deep merge of synthesis settings (later wins), for flags that set parts of one option. */
export function mergeSynthesis(...parts: (Partial<SynthesisOptions> | undefined)[]): Partial<SynthesisOptions> {
  const merge = (a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> => {
    const out = { ...a };
    for (const [k, v] of Object.entries(b)) {
      const prev = out[k];
      const isObj = (x: unknown) => x !== null && typeof x === 'object' && !Array.isArray(x);
      out[k] = isObj(prev) && isObj(v) ? merge(prev as Record<string, unknown>, v as Record<string, unknown>) : v;
    }
    return out;
  };
  return parts.reduce<Record<string, unknown>>((acc, p) => (p ? merge(acc, p as Record<string, unknown>) : acc), {}) as Partial<SynthesisOptions>;
}
