// What `compare` measures differently on a Swin than on a ViT (docs/swin.md, "Stage:
// compare"): the head-input features (a ViT's class token — for a distilled DeiT its class
// half —, a Swin's pooled, normed features), the class-token attention entropy (a Swin has
// no class token: absent, null, never a stand-in number), the quantization plan and the
// back-end settings a record names (a Swin compared without reconstruction names none).
// Everything else in compare.ts is written once for both; the refusals of a Swin's options
// are run's (lib/model-kind.ts).

import { SwinModel } from '../swin';
import { prefixTokens, tokenCount } from '../vit-config';
import { BACK_END_DEFAULTS, explicitBackEnd, planQuantization, QuantOptions, QuantPlan, ReconstructionOptions } from '../quant/quant-config';
import { planSwinQuantization } from '../quant/swin-quant-config';
import { AnyModel, swinRunSettings } from '../model-kind';
import { clsAttentionEntropy } from './feature-stats';

export type CompareModel = AnyModel;
export type Architecture = 'vit' | 'swin';

export function architectureOf(m: CompareModel): Architecture {
  return m instanceof SwinModel ? 'swin' : 'vit';
}

/** Floats per image. */
export function imageLength(m: CompareModel): number {
  const c = m.config;
  return c.channels * c.imageHeight * c.imageWidth;
}

/** The quantization plan of `m` (a Swin's: calibration and reparameterization only). */
export function planFor(m: CompareModel, options: QuantOptions): QuantPlan {
  return m instanceof SwinModel ? planSwinQuantization(m.config, options) : planQuantization(m.config, options);
}

type CompareQuant = { calibration?: 'joint' | 'sequential'; reconstruction?: ReconstructionOptions };

/** `quant` with the back end written out as it resolves (explicitBackEnd), so that a record
 *  says which back end made it. A comparison without reconstruction (`reconstruction:
 *  false`) on a Swin writes no reconstruction settings, as every Swin record made before
 *  its reconstruction existed: naming the defaults there would record a reconstruction that
 *  never ran. A Swin with reconstruction records it as a ViT does. */
export function explicitCompareBackEnd<Q extends CompareQuant>(m: CompareModel, quant: Q, reconstruction?: ReconstructionOptions | false): Q {
  if (m instanceof SwinModel && reconstruction === false) return { ...quant, calibration: quant.calibration ?? BACK_END_DEFAULTS.calibration };
  return explicitBackEnd(quant);
}

/** Refuses what a Swin's comparison cannot do (run's refusals: synthesis off the CPU) before any work. */
export function checkCompareOptions(m: CompareModel, o: { device?: string }): void {
  if (m instanceof SwinModel) swinRunSettings({ device: o.device ?? 'cpu' });
}

/** The head's input for `n` images, [n, dim] with its dim: a ViT's class token (for a
 *  distilled DeiT the class-token half), a Swin's pooled features after its final norm. */
export async function headFeatures(m: CompareModel, images: Float32Array, n: number, batch = 256): Promise<{ feats: Float32Array; dim: number }> {
  const per = imageLength(m);
  let feats: Float32Array | null = null;
  let dim = 0;
  for (let s = 0; s < n; s += batch) {
    const b = Math.min(batch, n - s);
    const x = images.subarray(s * per, (s + b) * per);
    let rows: Float32Array;
    if (m instanceof SwinModel) {
      await m.forward(x, b);
      const pooled = await m.output('pooled');
      dim = pooled.shape[1];
      rows = pooled.data;
    } else {
      dim = m.config.embedDim;
      const out = await m.forward(x, b, { features: true });
      const hin = out.features!.length / (b * dim);
      rows = new Float32Array(b * dim);
      for (let i = 0; i < b; i++) rows.set(out.features!.subarray(i * hin * dim, i * hin * dim + dim), i * dim);
    }
    feats ??= new Float32Array(n * dim);
    feats.set(rows.subarray(0, b * dim), s * dim);
  }
  return { feats: feats ?? new Float32Array(0), dim };
}

/** Class-token attention entropy over up to 64 images (nats); null where the model has no
 *  class token (a Swin, or a ViT built without one). */
export async function attentionEntropy(m: CompareModel, images: Float32Array, n: number): Promise<number | null> {
  if (m instanceof SwinModel || !m.config.classToken) return null;
  const c = m.config;
  const k = Math.min(n, 64);
  const out = await m.forward(images.subarray(0, k * imageLength(m)), k, { attention: true });
  return clsAttentionEntropy(out.attention!, k, c.numHeads, tokenCount(c), prefixTokens(c));
}
