// What the workflows (`run`, lib/run/; `compare`, lib/compare/) share about the two model
// classes they take: the logits of either, and the options a Swin cannot take yet (CUDA),
// refused before any work with what was expected and what was found. Below both
// workflows, which may not import each other (.dependency-cruiser.cjs).

import { SpdfqError } from './errors';
import { VitModel } from './vit';
import { SwinModel } from './swin';
import { ReconstructionOptions } from './quant/quant-config';

export type AnyModel = VitModel | SwinModel;

/** Logits of either model class (a VitModel returns them with its taps). */
export function logitsOf(model: AnyModel): (x: Float32Array, batch: number) => Promise<Float32Array> {
  if (model instanceof SwinModel) return (x, b) => model.forward(x, b);
  return async (x, b) => (await model.forward(x, b)).logits;
}

/** The workflow options a Swin does not take yet, refused before any work; returns the
 *  reconstruction setting quantization gets (as given: a Swin is reconstructed as a ViT is,
 *  docs/swin.md, "Stage: quantization"). */
export function swinRunSettings(o: {
  device?: string; reconstruction?: ReconstructionOptions | false; cliFlags?: boolean;
}): ReconstructionOptions | false | undefined {
  const flag = (api: string, cli: string) => (o.cliFlags ? cli : api);
  if (o.device !== undefined && o.device !== 'cpu') {
    throw new SpdfqError('E_CONFIG', `${flag('device', '--device')}: a Swin runs on the CPU only (docs/swin.md, "Stages that remain", CUDA); expected 'cpu', received '${o.device}'`);
  }
  return o.reconstruction;
}
