// Shards of one synthesis (options.shard): each shard keeps its slice of the batch's images
// and per-image draws; `synth --merge` puts the slices back together. The slices are the
// unsplit run's images bit for bit (docs/scale-out.md, "Synthesis shards", says why); the
// per-step losses are each shard's part of the batch's losses, so the merged losses are
// their sums (one run's up to float rounding: the order of the sums differs).

import { SpdfqError } from '../errors';
import { Shard, shardRange } from '../shard';
import type { ResolvedSynthesisOptions } from './option-types';
import type { StepLossRecord, SynthesisResult } from './result';

type Get<T> = (o: SynthesisResult) => T | null | undefined;
/** A per-image array (B equal rows) of the new result, from the same array of the old. */
type Each = <T extends Float32Array | Int32Array>(get: Get<T>) => T | null;

/** A result of B images whose every per-image array is `each` of that array (the one list
 *  of them: slicing and merging both go through it). */
function mapImages(r: SynthesisResult, B: number, each: Each, sources: string[] | null): SynthesisResult {
  const shape5 = (s: number[]) => [B, ...s.slice(1)] as [number, number, number, number, number];
  return {
    ...r,
    images: each((o) => o.images)!,
    shape: [B, r.shape[1], r.shape[2], r.shape[3]],
    targets: each((o) => o.targets)!,
    regionClasses: each((o) => o.regionClasses),
    softLogits: r.softLogits ? { own: each((o) => o.softLogits?.own)!, cells: each((o) => o.softLogits?.cells) } : null,
    priors: r.priors ? { ...r.priors, maps: each((o) => o.priors?.maps)!, shape: shape5(r.priors.shape) } : null,
    ...(r.windowPriors !== undefined
      ? { windowPriors: r.windowPriors ? r.windowPriors.map((t, k) => ({ ...t, maps: each((o) => o.windowPriors?.[k].maps)!, shape: shape5(t.shape) })) : null }
      : {}),
    sources,
  };
}

/** The shard's slice of a whole-batch result (the result itself without a shard). */
export function sliceShard(r: SynthesisResult): SynthesisResult {
  const s = r.options.shard;
  if (!s) return r;
  const B = r.shape[0];
  const { begin, end } = shardRange(B, s);
  const cut: Each = (get) => {
    const a = get(r);
    if (!a) return null;
    const per = a.length / B;
    return a.slice(begin * per, end * per) as typeof a;
  };
  return mapImages(r, end - begin, cut, r.sources ? r.sources.slice(begin, end) : null);
}

/** The options without the shard, as canonical JSON (sorted keys): what shards must share. */
function runKey(o: ResolvedSynthesisOptions): string {
  const { shard: _shard, ...rest } = o;
  return JSON.stringify(rest, (_k, x: unknown) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([p], [q]) => p.localeCompare(q))) : x));
}

const ADDITIVE = ['total', 'apa', 'cls', 'tv', 'pse', 'targetProb'] as const;

interface ShardInput {
  source: string;
  result: SynthesisResult;
}

/** Every shard of one run present once: the results in shard order, or a coded error naming
 *  the folder that does not fit. */
function shardsInOrder(inputs: ShardInput[]): ShardInput[] {
  const what = 'synth --merge';
  if (inputs.length === 0) throw new SpdfqError('E_CONFIG', `${what}: expected the output folders of the shards of one run, received none`);
  const unsharded = inputs.find((x) => !x.result.options.shard);
  if (unsharded) throw new SpdfqError('E_CONFIG', `${what}: ${unsharded.source} is not a shard (its synthesis.json has no options.shard)`);
  const first = inputs[0];
  const n = first.result.options.shard!.count;
  const key = runKey(first.result.options);
  const bySlot = new Map<number, ShardInput>();
  for (const x of inputs) {
    const s: Shard = x.result.options.shard!;
    if (s.count !== n) throw new SpdfqError('E_CONFIG', `${what}: ${x.source} is shard ${s.index}/${s.count}, ${first.source} one of ${n} shards: expected the shards of one run`);
    if (runKey(x.result.options) !== key) throw new SpdfqError('E_CONFIG', `${what}: ${x.source} was made with other options than ${first.source} (compare the options in their synthesis.json): expected the shards of one run`);
    const prev = bySlot.get(s.index);
    if (prev) throw new SpdfqError('E_CONFIG', `${what}: shard ${s.index}/${n} given twice (${prev.source} and ${x.source})`);
    bySlot.set(s.index, x);
  }
  const missing = Array.from({ length: n }, (_, i) => i).filter((i) => !bySlot.has(i));
  if (missing.length) throw new SpdfqError('E_CONFIG', `${what}: missing shard${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i}/${n}`).join(', ')} of the ${n}`);
  const ordered = Array.from({ length: n }, (_, i) => bySlot.get(i)!);
  const f = ordered[0];
  const planOf = (r: SynthesisResult) => JSON.stringify(r.plan && { chunkImages: r.plan.chunkImages, regionBatch: r.plan.regionBatch });
  for (const [i, x] of ordered.entries()) {
    const p = x.result;
    const { begin, end } = shardRange(p.options.images, { index: i, count: n });
    if (p.shape[0] !== end - begin) throw new SpdfqError('E_CONFIG', `${what}: ${x.source} holds ${p.shape[0]} images, expected ${end - begin} (shard ${i}/${n} of ${p.options.images})`);
    if (p.stepsDone !== f.result.stepsDone || p.alpha !== f.result.alpha) {
      throw new SpdfqError('E_CONFIG', `${what}: ${x.source} ran ${p.stepsDone} steps with α1 ${p.alpha}, ${f.source} ${f.result.stepsDone} with ${f.result.alpha}: expected the shards of one run`);
    }
    // The micro-batches set where each image's classification gradient is normalized: shards
    // planned differently (another thread count or device) are not one run's.
    if (planOf(p) !== planOf(f.result)) {
      throw new SpdfqError('E_CONFIG', `${what}: ${x.source} ran micro-batches of ${planOf(p)}, ${f.source} of ${planOf(f.result)} (another thread count or device): expected the shards of one run`);
    }
  }
  return ordered;
}

function concat<T extends Float32Array | Int32Array>(parts: (T | null)[], make: (n: number) => T): T | null {
  if (parts.every((p) => p === null)) return null;
  const out = make(parts.reduce((n, p) => n + (p?.length ?? 0), 0));
  let at = 0;
  for (const p of parts) {
    out.set(p!, at);
    at += p!.length;
  }
  return out;
}

/** One result from the n shards of a run: every shard present once, the same run. */
export function mergeShardResults(inputs: ShardInput[]): SynthesisResult {
  const parts = shardsInOrder(inputs).map((x) => x.result);
  const first = parts[0];
  const B = first.options.images;
  const join: Each = (get) => {
    const pieces = parts.map((p) => get(p) ?? null);
    const a = pieces[0];
    if (!a) return null;
    return (a instanceof Float32Array ? concat(pieces as Float32Array[], (k) => new Float32Array(k)) : concat(pieces as Int32Array[], (k) => new Int32Array(k))) as typeof a;
  };
  const merged = mapImages(first, B, join, first.sources ? parts.flatMap((p) => p.sources ?? []) : null);
  const losses: StepLossRecord[] = first.losses.map((l, step) => {
    const sum = { ...l };
    for (const k of ADDITIVE) sum[k] = parts.reduce((a, p) => a + p.losses[step][k], 0);
    return sum;
  });
  const { shard: _shard, ...options } = first.options;
  // Compute spent over all shards (they ran side by side: the wall time is their maximum).
  return { ...merged, losses, seconds: parts.reduce((a, p) => a + p.seconds, 0), options };
}
