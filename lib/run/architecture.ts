// What `run` does differently for a Swin than for a ViT (docs/swin.md, "Stage: run"): the
// loader (chosen by the graph, isSwinOnnx; `compare`'s CLI uses it too), the model classes
// and the quantized export. The options a Swin cannot take yet, and the logits of either
// model, are shared with `compare` from lib/model-kind.ts. Everything else in run.ts is
// written once for both.

import { importBytes, ImportedModel } from '../onnx/import-onnx';
import { readOnnxSource } from '../onnx/read-source';
import { describeSwin, ImportedSwin, importSwinBytes, isSwinOnnx } from '../onnx/import-swin';
import { createVit } from '../vit';
import { createSwin } from '../swin';
import { QuantizedVit, simulateExported } from '../quant/quantize';
import { QuantizedSwin } from '../quant/quantize-swin';
import { exportQuantizedOnnx, QuantExportOptions, QuantExportResult } from '../quant/export-onnx';
import { exportQuantizedSwinOnnx } from '../quant/export-swin-onnx';
import { AnyModel } from '../model-kind';
export { logitsOf, swinRunSettings } from '../model-kind';
import { Backend } from './device';

export type RunImport = ImportedModel | ImportedSwin;
export type RunModel = AnyModel;
export type RunQuantized = QuantizedVit | QuantizedSwin;

/** Said in the report in place of the ViT's class-token attention maps. */
export const SWIN_NO_ATTENTION_MAPS = 'Swin: attention maps beside their priors are drawn for ViTs only (a Swin has no class token and attends per window); none are shown';

export function isSwinImport(m: RunImport): m is ImportedSwin {
  return (m as ImportedSwin).kind === 'swin';
}

/** Imports a ViT or a Swin, chosen by what the graph looks like (`run`, `compare`). */
export async function importForRun(modelPath: string, command = 'run'): Promise<RunImport> {
  const { bytes, filePath } = await readOnnxSource(modelPath, command);
  return isSwinOnnx(bytes, filePath) ? importSwinBytes(bytes, filePath) : importBytes(bytes, filePath);
}

/** The import stage's one-line summary. */
export function describeImport(m: RunImport): string {
  if (isSwinImport(m)) return describeSwin(m);
  const c = m.config;
  return `${m.family}: depth ${c.depth}, dim ${c.embedDim}, ${c.numHeads} heads, ${c.imageHeight}×${c.imageWidth}`;
}

/** The family named in the report. */
export function familyOf(m: RunImport): string {
  return isSwinImport(m) ? 'torchvision-swin' : m.family;
}

/** The full-precision model on the CPU, or on `backend` (a ViT's synthesis on CUDA). */
export async function createModel(m: RunImport, threads: number | undefined, backend?: Backend): Promise<RunModel> {
  if (isSwinImport(m)) return createSwin(m.config, m.weights, { threads });
  return createVit(m.config, m.weights, backend?.kind === 'cuda' ? { device: `cuda:${backend.index}` } : { threads });
}

export function exportRunQuantized(q: RunQuantized, options: QuantExportOptions): QuantExportResult {
  return q instanceof QuantizedSwin ? exportQuantizedSwinOnnx(q, options) : exportQuantizedOnnx(q, options);
}

/** The engine running the quantizers exactly as exported (where the export approximated one). */
export async function simulateRunExported(q: RunQuantized, exported: QuantExportResult): Promise<{ forward: (x: Float32Array, b: number) => Promise<Float32Array>; dispose: () => Promise<void> }> {
  if (q instanceof QuantizedVit) return simulateExported(q, exported);
  const model = createSwin(q.config, q.getWeights(), {});
  await model.exclusive(async () => {
    model.nativeHandle().setActQuant(exported.sites);
    model.nativeHandle().setWeightQuant(exported.weights);
  });
  return { forward: (x, b) => model.forward(x, b), dispose: () => model.dispose() };
}
