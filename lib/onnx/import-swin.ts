// Import of a Swin V1 ONNX export (torchvision or timm) (stage 2 of docs/swin.md): file or bytes →
// the SwinConfig and torchvision-named weights lib/swin.ts runs, and a convenience that
// builds the native SwinModel from them. No native code is needed for the import itself.

import * as path from 'path';
import { SpdfqError } from '../errors';
import { createSwin, SwinConfig, SwinModel, SwinOptions } from '../swin';
import { ParamBinding } from './bindings';
import { OnnxGraph } from './graph';
import { decodeModel, toNumber } from './proto';
import { readOnnxSource } from './read-source';
import { looksLikeSwin, recognizeSwin, SwinRecognition } from './recognize-swin';

export const SUPPORTED_SWIN =
  "Swin V1 from torchvision or timm (SwinTransformer with PatchMerging: swin_t/s/b, swin_{tiny,small,base}_patch4_window7_224 and custom depths, heads, windows, MLP ratios), square patches, " +
  'exported by torch.onnx, TorchScript or dynamo (opsets 14-21 tested; LayerNorm as LayerNormalization or decomposed; roll as Slice + Concat), dynamic or fixed batch, fixed image size';

export interface ImportedSwin {
  kind: 'swin';
  config: SwinConfig;
  /** Weights under torchvision state_dict names (relative_position_index excluded). */
  weights: Map<string, Float32Array>;
  sourceNames: Map<string, string[]>;
  bindings: Map<string, ParamBinding>;
  forms: SwinRecognition['forms'];
  opset: number;
  irVersion: number;
  producer: string;
  inputName: string;
  outputName: string;
  inputDims: (number | string | null)[];
  fixedBatch: number | null;
  path: string | null;
}

export interface SwinImportOptions {
  /** Which graph output holds the logits, when there are several. */
  outputName?: string;
}

/** Recognizes a decoded graph as a Swin (importer internals; see importSwinOnnx). */
export function importSwinGraph(graph: OnnxGraph, filePath: string | null, options: SwinImportOptions = {}): ImportedSwin {
  let r: SwinRecognition;
  try {
    r = recognizeSwin(graph, options);
  } catch (err) {
    // the shared matchers (LayerNorm, activation) word their errors for ViTs
    if (err instanceof SpdfqError && err.message.startsWith('not a supported ViT graph')) {
      throw new SpdfqError(err.code, `${err.message.replace(/^not a supported ViT graph/, 'not a supported Swin graph').replace(/ Supported: [\s\S]*$/, '')} Supported Swin: ${SUPPORTED_SWIN}.`, { cause: err });
    }
    throw err;
  }
  const m = graph.model;
  return {
    kind: 'swin',
    config: r.config,
    weights: r.weights,
    sourceNames: r.sourceNames,
    bindings: r.bindings,
    forms: r.forms,
    opset: graph.opset,
    irVersion: toNumber(m.irVersion),
    producer: [m.producerName, m.producerVersion].filter((s) => s).join(' '),
    inputName: r.inputName,
    outputName: r.outputName,
    inputDims: r.inputDims,
    fixedBatch: r.fixedBatch,
    path: filePath,
  };
}

export function importSwinBytes(bytes: Uint8Array, filePath: string | null, options: SwinImportOptions = {}): ImportedSwin {
  const what = filePath ? `'${filePath}'` : 'the ONNX buffer';
  try {
    const model = decodeModel(bytes, what);
    return importSwinGraph(new OnnxGraph(model, { baseDir: filePath ? path.dirname(filePath) : undefined }), filePath, options);
  } catch (err) {
    if (err instanceof SpdfqError) throw err;
    throw new SpdfqError('E_ONNX', `internal error while reading ${what} as a Swin (the file may be corrupt): ${(err as Error).message ?? String(err)}`, { cause: err });
  }
}

/** Reads a Swin V1 export (torchvision or timm). E_IO when the file cannot be read; E_ONNX naming
 *  the node where recognition stopped when it is not one. */
export async function importSwinOnnx(source: string | Uint8Array, options: SwinImportOptions = {}): Promise<ImportedSwin> {
  const { bytes, filePath } = await readOnnxSource(source, 'importSwinOnnx');
  return importSwinBytes(bytes, filePath, options);
}

/** importSwinOnnx, then createSwin: a CPU SwinModel ready for forward(). */
export async function loadSwinOnnx(source: string | Uint8Array, options: SwinImportOptions & SwinOptions = {}): Promise<{ imported: ImportedSwin; model: SwinModel }> {
  const imported = await importSwinOnnx(source, options);
  const model = createSwin(imported.config, imported.weights, { threads: options.threads, reference: options.reference });
  return { imported, model };
}

/** Whether `bytes` decode as an ONNX graph that looks like a Swin (commands that run either
 *  architecture choose their loader by it; a graph that does not decode is no Swin, and the
 *  ViT loader reports why it cannot be read). */
export function isSwinOnnx(bytes: Uint8Array, filePath: string | null): boolean {
  try {
    return looksLikeSwin(new OnnxGraph(decodeModel(bytes, filePath ? `'${filePath}'` : 'the ONNX buffer'), { baseDir: filePath ? path.dirname(filePath) : undefined }));
  } catch (err) {
    if (err instanceof SpdfqError) return false;
    throw err;
  }
}

/** One line naming a recognized Swin's architecture, for messages and `inspect`. */
export function describeSwin(m: Pick<ImportedSwin, 'config'>): string {
  const c = m.config;
  return `torchvision Swin Transformer V1: ${c.imageHeight}×${c.imageWidth}×${c.channels}, patch ${c.patchSize}, embed ${c.embedDim}, depths [${c.depths.join(', ')}], heads [${c.numHeads.join(', ')}], window ${c.windowSize.join('×')}, MLP ratio ${c.mlpRatio}, ${c.numClasses} classes`;
}

/** The error the ViT pipeline (importOnnx: the API's ViT loaders) gives for a graph
 *  that looks like a Swin: what it was recognized as and what is missing, or the Swin
 *  recognizer's own error when the graph is not a Swin it runs either. */
export function swinRefusal(graph: OnnxGraph, filePath: string | null): SpdfqError {
  let m: ImportedSwin;
  try {
    m = importSwinGraph(graph, filePath);
  } catch (err) {
    return err instanceof SpdfqError ? err : new SpdfqError('E_ONNX', `internal error while reading the graph as a Swin: ${(err as Error).message}`, { cause: err });
  }
  return new SpdfqError(
    'E_ONNX',
    `${filePath ? `'${filePath}'` : 'the ONNX buffer'} was recognized as a ${describeSwin(m)}. ` +
      '`run` and `compare` take it, with block reconstruction as for a ViT (docs/swin.md, "Stage: run", "Stage: compare"). ' +
      'Synthesis runs on it (`spdfq-native synth --model <file>`, or synthesize() on loadSwinOnnx\'s model; docs/swin.md, "Stage: synthesis"), ' +
      'and quantization on given calibration images with its quantized export (`spdfq-native quantize --model <file>`, or quantize(); docs/swin.md, "Stage: quantization"), ' +
      'as do its fp32 forward and fp32 export (loadSwinOnnx, exportSwinFp32); `spdfq-native inspect` describes it.',
  );
}
