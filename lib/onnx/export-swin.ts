// fp32 export of an imported Swin with new weights (export-fp32.ts does this for ViTs).
// The ViT export rewrites the original file's initializers; a Swin file cannot be written
// back that way, because torch.onnx folded each relative position bias table into a
// gathered [1, heads, N, N] constant (ParamBinding.source is null for it). So the graph is
// written anew by buildSwinOnnx from the imported config, keeping what a user of the
// file sees: input and output names, fixed or dynamic batch, opset, LayerNorm and GELU
// forms. Node names, metadata and extra outputs of the original are not kept.

import { BuildSwinOptions, buildSwinOnnx, MAX_SWIN_OPSET, MIN_SWIN_OPSET } from './build-swin';
import { writeModelFile } from './export-fp32';
import { Weights } from './graph-layers';
import { ImportedSwin } from './import-swin';

/** buildSwinOnnx's options that reproduce an imported file's interface and forms (an
 *  opset outside the writer's range is moved to its nearest end). */
export function swinBuildOptions(model: ImportedSwin): BuildSwinOptions {
  const opset = Math.min(Math.max(model.opset, MIN_SWIN_OPSET), MAX_SWIN_OPSET);
  return {
    opset,
    layerNorm: model.forms.layerNorm === 'op' && opset >= 17 ? 'fused' : 'decomposed',
    gelu: model.forms.gelu === 'op' && opset >= 20 ? 'op' : 'formula',
    batch: model.fixedBatch ?? 'dynamic',
    inputName: model.inputName,
    outputName: model.outputName,
  };
}

export function exportSwinFp32Bytes(model: ImportedSwin, weights: Weights): Uint8Array {
  return buildSwinOnnx(model.config, weights, swinBuildOptions(model));
}

/** Writes `model` with `weights` (torchvision names, PyTorch shapes) to `outPath`. */
export async function exportSwinFp32(model: ImportedSwin, weights: Weights, outPath: string): Promise<void> {
  await writeModelFile(exportSwinFp32Bytes(model, weights), outPath);
}
