// The options that define a comparison's protocol: runs (or finished cells) that differ in
// any of them measured different things and do not share a table.

import { BACK_END_DEFAULTS } from '../quant/quant-config';

export const PROTOCOL_KEYS = ['images', 'iters', 'reconstruction', 'ablationBits', 'synthesis', 'quant', 'preprocess'] as const;
export type ProtocolKey = (typeof PROTOCOL_KEYS)[number];

/** The back end's defaults before 2026-12-04. Records made before then name none of these
 *  settings where they used the defaults; records made since name all of them
 *  (explicitBackEnd). */
const LEGACY_BACK_END = { calibration: 'joint', embed: false, head: false, learnSteps: false } as const;

type QuantRecord = { calibration?: string; reconstruction?: Record<string, unknown> } & Record<string, unknown>;

/** `quant` as the settings that depart from today's back-end defaults: a record's missing
 *  setting is the legacy default, and one equal to today's default is left out, so runs of
 *  the same back end share a protocol whichever defaults they ran under. */
function canonicalQuant(q: QuantRecord): QuantRecord {
  const out: QuantRecord = { ...q };
  const calibration = q.calibration ?? LEGACY_BACK_END.calibration;
  if (calibration === BACK_END_DEFAULTS.calibration) delete out.calibration;
  else out.calibration = calibration;
  const r: Record<string, unknown> = { ...q.reconstruction };
  for (const k of ['embed', 'head', 'learnSteps'] as const) {
    const v = r[k] ?? LEGACY_BACK_END[k];
    if (v === BACK_END_DEFAULTS[k]) delete r[k];
    else r[k] = v;
  }
  if (Object.keys(r).length > 0) out.reconstruction = r;
  else delete out.reconstruction;
  return out;
}

/** A protocol option as canonical JSON (sorted keys; a missing synthesis override is none;
 *  `quant` by canonicalQuant). */
export function protocolValue(record: { options: Partial<Record<ProtocolKey, unknown>> }, key: ProtocolKey): string {
  const v =
    key === 'quant' ? canonicalQuant((record.options.quant ?? {}) as QuantRecord) : key === 'synthesis' ? record.options[key] ?? {} : record.options[key] ?? null;
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([p], [q]) => p.localeCompare(q))) : x,
  );
}
