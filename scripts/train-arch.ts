// The model-family half of scripts/train-model.ts: building the model to train (ViT or
// Swin), describing it in the model card, and writing the trained model as ONNX
// (build-vit.ts, build-swin.ts).

import * as fs from 'fs';
import { createVit, randomVitWeights } from '../lib/vit';
import { completeVitConfig, VitConfig, VitConfigInput } from '../lib/vit-config';
import { createSwin, completeSwinConfig, randomSwinWeights, SwinConfig, SwinConfigInput } from '../lib/swin';
import { buildVitOnnx } from '../lib/onnx/build-vit';
import { buildSwinOnnx } from '../lib/onnx/build-swin';
import { importOnnx } from '../lib/onnx/import-onnx';
import { importSwinOnnx } from '../lib/onnx/import-swin';
import { TrainableModel } from '../lib/train/trainable';

export type ArchSpec =
  | { family: 'vit'; config: VitConfigInput }
  /** `why`: the choice of this architecture, for the card. */
  | { family: 'swin'; config: SwinConfigInput; why: string };

/** The bundled models' ONNX opset (the ViT cards' files are opset 17). */
const OPSET = 17;

export interface TrainedModel {
  model: TrainableModel;
  /** The completed config (part of the checkpoint's recipe). */
  config: VitConfig | SwinConfig;
  /** The card's first sentence's noun phrase and its architecture row. */
  title: string;
  architecture: string;
  /** What AdamW does not decay (trainable.ts, decays()), in words. */
  noDecay: string;
  why?: string;
  /** Writes the trained model to <stem>.onnx; returns the file's path. */
  write(stem: string): Promise<string>;
  dispose(): Promise<void>;
}

/** Seed of the initial random weights (the bundled ViTs were trained from seed 7). */
const INIT_SEED = 7;

export async function createTrainable(arch: ArchSpec, threads: number | undefined, resumeOnnx: string | undefined): Promise<TrainedModel> {
  if (arch.family === 'vit') {
    const config = completeVitConfig(arch.config);
    const initial = resumeOnnx ? (await importOnnx(resumeOnnx)).weights : randomVitWeights(config, INIT_SEED);
    const model = await createVit(config, initial, { threads });
    return {
      model,
      config,
      title: 'A DeiT-style vision transformer',
      architecture: `ViT, class token, pre-norm, ${config.depth} blocks, dim ${config.embedDim}, ${config.numHeads} heads, MLP ${config.mlpDim}, patch ${config.patchSize} on ${config.imageHeight}×${config.imageWidth}×${config.channels} (${config.imageHeight / config.patchSize}×${config.imageWidth / config.patchSize} tokens + class token), exact GELU, LayerNorm eps ${config.layerNormEps}`,
      noDecay: 'biases/norms/embeddings',
      write: async (stem) => {
        fs.writeFileSync(`${stem}.onnx`, buildVitOnnx(config, model.getWeights(), { opset: OPSET }));
        return `${stem}.onnx`;
      },
      dispose: () => model.dispose(),
    };
  }
  const config = completeSwinConfig(arch.config);
  const initial = resumeOnnx ? (await importSwinOnnx(resumeOnnx)).weights : randomSwinWeights(config, INIT_SEED);
  const model = createSwin(config, initial, { threads });
  const [wh, ww] = config.windowSize;
  const grid = `${config.imageHeight / config.patchSize}×${config.imageWidth / config.patchSize}`;
  return {
    model,
    config,
    title: 'A Swin Transformer (torchvision\'s Swin V1 layout)',
    architecture: `Swin V1, patch ${config.patchSize} on ${config.imageHeight}×${config.imageWidth}×${config.channels} (${grid} tokens), window ${wh}×${ww} (shifted by half in odd blocks), embed ${config.embedDim}, depths [${config.depths.join(', ')}], heads [${config.numHeads.join(', ')}], MLP ratio ${config.mlpRatio}, patch merging between stages, mean-pooled head, exact GELU, LayerNorm eps ${config.layerNormEps}`,
    noDecay: 'biases/norms/relative-position bias tables',
    why: arch.why,
    write: async (stem) => {
      fs.writeFileSync(`${stem}.onnx`, buildSwinOnnx(config, await model.getWeights(), { opset: OPSET }));
      return `${stem}.onnx`;
    },
    dispose: () => model.dispose(),
  };
}
