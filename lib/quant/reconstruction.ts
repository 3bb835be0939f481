// Block reconstruction after calibration, for either model class (docs/quantization.md; a
// Swin: docs/swin.md, "Stage: quantization"): the native reconstruct() on the calibration
// images with the plan's settings, and the activation quantizers with the steps LSQ learned.

import { NativeQuantHooks, SiteQuantizer, StageReport } from '../native';
import { QuantizeProgress, QuantPlan } from './quant-config';

/** Runs the plan's reconstruction on `native` (inside the model's `exclusive`) when it has
 *  one with iterations; returns its per-stage reports ([] when none ran) and `sites` with
 *  the learned steps (LSQ), which the engine's quantizers already hold. */
export async function reconstructModel(
  exclusive: <T>(job: () => Promise<T>) => Promise<T>,
  native: NativeQuantHooks,
  plan: QuantPlan,
  images: Float32Array,
  numImages: number,
  sites: SiteQuantizer[],
  progress: (p: QuantizeProgress) => void,
): Promise<{ reconstruction: StageReport[]; sites: SiteQuantizer[] }> {
  const r = plan.reconstruction;
  if (!r || r.iters === 0) return { reconstruction: [], sites };
  const reconstruction = await exclusive(() =>
    native.reconstruct(images, numImages, { ...r, batch: Math.min(r.batch, numImages) }, (p) => progress({ stage: 'reconstruct', reconstruct: p })),
  );
  const learned = reconstruction.flatMap((s) => s.steps.map((st) => ({ ...st, block: s.block })));
  if (learned.length === 0) return { reconstruction, sites };
  return { reconstruction, sites: sites.map((s) => ({ ...s, scale: learned.find((l) => l.site === s.site && l.block === s.block)?.scale ?? s.scale })) };
}
