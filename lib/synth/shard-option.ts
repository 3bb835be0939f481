// `shard` of the synthesis options: which shard of the images this process synthesizes, and
// the loss parts a shard cannot run exactly, refused with the reason (docs/scale-out.md,
// "Synthesis shards").

import type { Shard } from '../shard';
import { bad } from './option-checks';
import type { ResolvedSynthesisOptions } from './option-types';

/** The part of `o` that couples all images within a step, or null when every loss is a sum
 *  of per-image terms over fixed normalizers (what a shard can reproduce on its own). */
function coupledPart(o: ResolvedSynthesisOptions): string | null {
  if (o.pse.enabled) return "PSAQ-ViT's patch-similarity entropy, whose kernel density spans the similarity range of the whole batch at each step";
  if (o.tv.target) return "PSAQ-ViT's TV target, whose sign is set by the whole batch's TV at each step";
  if (o.tv.form === 'l2') return "the 'l2' TV prior, one norm over the whole batch whose gradient divides by it at each step";
  return null;
}

/** The checked shard (undefined for the whole batch, 1 shard included), or a coded error. */
export function resolveImageShard(o: ResolvedSynthesisOptions, s: Shard | undefined): Shard | undefined {
  if (s === undefined) return undefined;
  if (s === null || typeof s !== 'object' || !Number.isInteger(s.count) || !Number.isInteger(s.index) || s.count < 1 || s.index < 0 || s.index >= s.count) {
    bad('shard', '{ index, count } with 0 ≤ index < count', JSON.stringify(s));
  }
  if (s.count === 1) return undefined;
  if (s.count > o.images) bad('shard', `at most one shard per image (${o.images} images)`, `${s.count} shards`);
  const coupled = coupledPart(o);
  if (coupled) {
    bad('shard', `losses that are sums over images (spdfq, inversion, noise, real); this ${o.method} run uses ${coupled}, which would need every shard's images at every step: run it unsharded (compare --shard splits a table by cells instead)`, `shard ${s.index}/${s.count}`);
  }
  return { index: s.index, count: s.count };
}
