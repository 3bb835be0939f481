// Validation of synthesis options: each check throws E_CONFIG naming the option by its API
// path (the CLI's --synth-option takes the same path), what was expected and what was received.

import { SpdfqError } from '../errors';

export function bad(field: string, expected: string, received: unknown): never {
  const shown = typeof received === 'string' ? `'${received}'` : Array.isArray(received) ? `[${received.join(', ')}]` : String(received);
  throw new SpdfqError('E_CONFIG', `synthesis option ${field}: expected ${expected}, received ${shown}`);
}
export function int(field: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) bad(field, `an integer in [${lo}, ${hi}]`, v);
  return v;
}
export function real(field: string, v: unknown, lo: number, hi: number, open = false): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi || (open && v === lo)) {
    bad(field, `a number in ${open ? '(' : '['}${lo}, ${hi}]`, v);
  }
  return v;
}
export function bool(field: string, v: unknown): boolean {
  if (typeof v !== 'boolean') bad(field, 'true or false', v);
  return v;
}
export function oneOf<T extends string>(field: string, v: unknown, options: readonly T[]): T {
  if (typeof v !== 'string' || !(options as readonly string[]).includes(v)) bad(field, `one of ${options.map((o) => `'${o}'`).join(', ')}`, v);
  return v as T;
}
/** `true`/`false` toggles a part with its defaults; an object sets fields (enabled defaults to true). */
export function part<T extends { enabled?: boolean }>(field: string, v: unknown, defaultOn: boolean): { on: boolean; o: T } {
  if (v === undefined) return { on: defaultOn, o: {} as T };
  if (typeof v === 'boolean') return { on: v, o: {} as T };
  if (v === null || typeof v !== 'object' || Array.isArray(v)) bad(field, 'true, false or an options object', v);
  const o = v as T;
  return { on: o.enabled === undefined ? true : bool(`${field}.enabled`, o.enabled), o };
}
export function blocksOf(field: string, v: unknown, depth: number, preset: Record<string, number[]>): number[] {
  if (typeof v === 'string') {
    if (!(v in preset)) bad(field, `one of ${Object.keys(preset).map((k) => `'${k}'`).join(', ')} or a list of 1-based block numbers`, v);
    return preset[v];
  }
  if (!Array.isArray(v) || v.length === 0) bad(field, `a non-empty list of 1-based block numbers in [1, ${depth}]`, v);
  const out = v.map((b, i) => int(`${field}[${i}]`, b, 1, depth));
  if (new Set(out).size !== out.length) bad(field, 'distinct block numbers', v);
  return out.sort((a, b) => a - b);
}
export function known(field: string, o: object, keys: readonly string[]): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) bad(`${field}.${k}`, `one of the known options (${keys.join(', ')})`, 'an unknown option');
}

