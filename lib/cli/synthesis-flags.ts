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

/** `flag path=value` items (repeatable) as a nested options object (see synthOptionFlags).
 *  A path into one of `mapFields` (options keyed by free-form names, such as the
 *  quantizer's `overrides`, whose keys are `blocks.3.fc2_in`) takes the rest of the path,
 *  dots and all, as one key: `overrides.blocks.3.fc2_in=8`. */
export function pathOptions(flag: string, items: string[] | undefined, mapFields: readonly string[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const item of items ?? []) {
    const { keys, raw } = splitPathItem(flag, String(item), mapFields);
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      value = raw;
    }
    let node = out;
    for (const k of keys.slice(0, -1)) {
      const next = node[k];
      if (next === true) node[k] = {};
      else if (next !== undefined && (typeof next !== 'object' || next === null || Array.isArray(next))) {
        throw new SpdfqError('E_CONFIG', `${flag} ${keys.join('.')}: '${k}' was already set to ${JSON.stringify(next)}, which has no fields`);
      }
      node = (node[k] ??= {}) as Record<string, unknown>;
    }
    const last = keys[keys.length - 1];
    if (last in node) throw new SpdfqError('E_CONFIG', `${flag} ${keys.join('.')}: given twice`);
    node[last] = value;
  }
  return out;
}

/** One `path=value` item as its path's keys and the value's text. */
function splitPathItem(flag: string, item: string, mapFields: readonly string[]): { keys: string[]; raw: string } {
  const map = /^([A-Za-z][A-Za-z0-9]*)\.([A-Za-z0-9_.]+)=(.*)$/.exec(item);
  if (map && mapFields.includes(map[1])) return { keys: [map[1], map[2]], raw: map[3] };
  const m = /^([A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)*)=(.*)$/.exec(item);
  if (!m) throw new SpdfqError('E_CONFIG', `${flag}: expected path=value (e.g. apa.loss=kl), received '${item}'`);
  return { keys: m[1].split('.'), raw: m[2] };
}

/** `--quant-option path=value` (repeatable): any quantization option by its dotted API path
 *  (`calibration=sequential`, `reconstruction.iters=1000`, `overrides.blocks.3.fc2_in=8`),
 *  validated with the rest of the quantization options. */
export function quantOptionFlags(items: string[] | undefined): Record<string, unknown> {
  return pathOptions('--quant-option', items, ['overrides']);
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
