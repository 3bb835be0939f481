// What `run` does differently for a Swin than for a ViT (docs/swin.md, "Stage: run"): the
// loader (chosen by the graph, isSwinOnnx), the model classes, the quantized export and the
// options a Swin cannot take yet — refused before any work, each saying what was expected
// and what was found. Everything else in run.ts is written once for both.

import { SpdfqError } from '../errors';
import { importBytes, ImportedModel } from '../onnx/import-onnx';
import { readOnnxSource } from '../onnx/read-source';
import { describeSwin, ImportedSwin, importSwinBytes, isSwinOnnx } from '../onnx/import-swin';
import { createVit, VitModel } from '../vit';
import { createSwin, SwinModel } from '../swin';
import { QuantizedVit, simulateExported } from '../quant/quantize';
import { QuantizedSwin } from '../quant/quantize-swin';
import { exportQuantizedOnnx, QuantExportOptions, QuantExportResult } from '../quant/export-onnx';
import { exportQuantizedSwinOnnx } from '../quant/export-swin-onnx';
import { ReconstructionOptions } from '../quant/quant-config';
export { SWIN_NO_RECONSTRUCTION } from '../quant/swin-quant-config';
import { Backend } from './device';

export type RunImport = ImportedModel | ImportedSwin;
export type RunModel = VitModel | SwinModel;
export type RunQuantized = QuantizedVit | QuantizedSwin;

/** Said in the report in place of the ViT's class-token attention maps. */
export const SWIN_NO_ATTENTION_MAPS = 'Swin: attention maps beside their priors are drawn for ViTs only (a Swin has no class token and attends per window); none are shown';

export function isSwinImport(m: RunImport): m is ImportedSwin {
  return (m as ImportedSwin).kind === 'swin';
}

/** Imports a ViT or a Swin, chosen by what the graph looks like. */
export async function importForRun(modelPath: string): Promise<RunImport> {
  const { bytes, filePath } = await readOnnxSource(modelPath, 'run');
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

/** Logits of either model class (a VitModel returns them with its taps). */
export function logitsOf(model: RunModel): (x: Float32Array, batch: number) => Promise<Float32Array> {
  if (model instanceof SwinModel) return (x, b) => model.forward(x, b);
  return async (x, b) => (await model.forward(x, b)).logits;
}

/** The run options a Swin does not take yet, refused before any work; returns the
 *  reconstruction setting quantization gets (always off for a Swin). */
export function swinRunSettings(o: {
  device?: string; exportFormat?: string; reconstruction?: ReconstructionOptions | false; quant?: { reconstruction?: ReconstructionOptions }; cliFlags?: boolean;
}): false {
  const flag = (api: string, cli: string) => (o.cliFlags ? cli : api);
  if (o.device !== undefined && o.device !== 'cpu') {
    throw new SpdfqError('E_CONFIG', `${flag('device', '--device')}: a Swin runs on the CPU only (docs/swin.md, "Stages that remain", CUDA); expected 'cpu', received '${o.device}'`);
  }
  if (o.exportFormat === 'matmulnbits') {
    throw new SpdfqError('E_CONFIG', `${flag('exportFormat', '--format')}: 'matmulnbits' is not written for Swin models yet; expected 'qdq' or 'qdq-int4', received 'matmulnbits'`);
  }
  const recon = [o.reconstruction, o.quant?.reconstruction].find((r) => r !== undefined && r !== false && r.iters !== 0);
  if (recon !== undefined) {
    throw new SpdfqError(
      'E_CONFIG',
      `${flag('reconstruction', '--recon-iters')}: block reconstruction of a Swin is not implemented yet (docs/swin.md, "Stages that remain"); expected it off (${flag('reconstruction: false', '--no-recon')}, or 0 iterations), received ${JSON.stringify(recon)}`,
    );
  }
  return false;
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
