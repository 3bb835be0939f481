// The options that define a comparison's protocol: runs (or finished cells) that differ in
// any of them measured different things and do not share a table.

export const PROTOCOL_KEYS = ['images', 'iters', 'reconstruction', 'ablationBits', 'synthesis', 'quant', 'preprocess'] as const;
export type ProtocolKey = (typeof PROTOCOL_KEYS)[number];

/** A protocol option as canonical JSON (sorted keys; a missing synthesis override is none). */
export function protocolValue(record: { options: Partial<Record<ProtocolKey, unknown>> }, key: ProtocolKey): string {
  const v = key === 'synthesis' || key === 'quant' ? record.options[key] ?? {} : record.options[key] ?? null;
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([p], [q]) => p.localeCompare(q))) : x,
  );
}
