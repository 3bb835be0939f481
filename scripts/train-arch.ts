// The model-family half of scripts/train-model.ts: building the model to train (ViT or
// Swin), describing it in the model card, and writing the trained model: the ViT as ONNX
// (build-vit.ts); the Swin as a weight file (lib/train/weight-file.ts) and as ONNX when
// lib/onnx/build-swin.ts (the Swin writer, another branch) is in this build.

import * as fs from 'fs';
import * as path from 'path';
import { createVit, randomVitWeights } from '../lib/vit';
import { completeVitConfig, VitConfig, VitConfigInput } from '../lib/vit-config';
import { createSwin, completeSwinConfig, randomSwinWeights, SwinConfig, SwinConfigInput } from '../lib/swin';
import { buildVitOnnx } from '../lib/onnx/build-vit';
import { importOnnx } from '../lib/onnx/import-onnx';
import { importSwinOnnx } from '../lib/onnx/import-swin';
import { TrainableModel } from '../lib/train/trainable';
import { saveWeightFile } from '../lib/train/weight-file';

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
  /** Writes the trained model under `stem` (<stem>.onnx, …); returns the card's lines
   *  about the files, and anything still to do (empty: nothing). */
  write(stem: string): Promise<{ files: string[]; todo: string }>;
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
        return { files: [`${stem}.onnx`], todo: '' };
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
      const weights = await model.getWeights();
      const files = saveWeightFile(stem, { family: 'swin', config }, model.paramSpecs, weights);
      const writer = swinOnnxWriter();
      if (writer) {
        fs.writeFileSync(`${stem}.onnx`, writer(config, weights, { opset: OPSET }));
        fs.rmSync(`${stem}.TODO.md`, { force: true }); // an earlier run's, now done
        return { files: [`${stem}.onnx`, ...files], todo: '' };
      }
      const todo = `TODO: no ONNX yet. This build has no lib/onnx/build-swin.ts (the Swin ONNX writer, branch swin-onnx). ` +
        `With a build that has it, rerun the same command (same --checkpoint and --out): the run resumes after its last epoch, trains nothing, and writes ${path.basename(stem)}.onnx; ` +
        `or call buildSwinOnnx(config, weights, { opset: ${OPSET} }) on ${path.basename(stem)}.weights.{json,bin} (lib/train/weight-file.ts, loadWeightFile).`;
      fs.writeFileSync(`${stem}.TODO.md`, `${todo}\n`);
      return { files, todo };
    },
    dispose: () => model.dispose(),
  };
}

type SwinOnnxWriter = (config: SwinConfig, weights: Map<string, Float32Array>, options: { opset: number }) => Uint8Array;

/** buildSwinOnnx when this build has it, looked up at run time: the writer is on another
 *  branch, and once it is merged and built, a rerun of a finished run writes the ONNX. */
function swinOnnxWriter(): SwinOnnxWriter | null {
  const file = path.join(__dirname, '..', 'lib', 'onnx', 'build-swin.js');
  if (!fs.existsSync(file)) return null;
  return (require(file) as { buildSwinOnnx: SwinOnnxWriter }).buildSwinOnnx;
}
