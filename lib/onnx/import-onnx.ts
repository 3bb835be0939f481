// Import without the engine: file → decoded model → recognized config and timm-named
// weights. `inspect` and fp32 export use this directly; load-model.ts adds the forward.

import * as path from 'path';
import { SpdfqError } from '../errors';
import { VitConfig } from '../vit-config';
import { ParamBinding } from './bindings';
import { OnnxGraph } from './graph';
import { decodeModel, toNumber } from './proto';
import { readOnnxSource } from './read-source';
import { swinRefusal } from './import-swin';
import { looksLikeSwin } from './recognize-swin';
import { ArchitectureVariant, GraphForms, Recognition, recognizeVit, RecognizeOptions, VitFamily } from './recognize';

export type ImportOptions = RecognizeOptions;

export interface ImportedModel {
  config: VitConfig;
  /** Weights under timm names with PyTorch shapes (lib/vit-config.ts vitParamSpecs). */
  weights: Map<string, Float32Array>;
  /** For each timm name, the names of the initializers (or Constant outputs) it was read
   *  from, as in the source model — several for HuggingFace's separate q/k/v. */
  sourceNames: Map<string, string[]>;
  family: VitFamily;
  forms: GraphForms;
  /** The architecture variant recognized (activation, norm placement, patch embedding,
   *  LayerScale, attention form). */
  variant: ArchitectureVariant;
  opset: number;
  irVersion: number;
  producer: string;
  inputName: string;
  outputName: string;
  inputDims: (number | string | null)[];
  fixedBatch: number | null;
  /** The model file, when imported from a path. */
  path: string | null;
  /** Where each parameter lives in the file (for export-fp32.ts). */
  bindings: Map<string, ParamBinding>;
  /** The original bytes, kept so export can rewrite them without losing unknown fields. */
  bytes: Uint8Array;
  /** Folder that external data paths are relative to. */
  baseDir: string | null;
}

/** Reads and recognizes a model. Every failure is a SpdfqError: E_IO when the file cannot
 *  be read, E_ONNX when it is not a supported ViT (the message says where and why). */
export async function importOnnx(source: string | Uint8Array, options: ImportOptions = {}): Promise<ImportedModel> {
  const { bytes, filePath } = await readOnnxSource(source, 'importOnnx');
  return importBytes(bytes, filePath, options);
}

export function importBytes(bytes: Uint8Array, filePath: string | null, options: ImportOptions = {}): ImportedModel {
  const what = filePath ? `'${filePath}'` : 'the ONNX buffer';
  const baseDir = filePath ? path.dirname(filePath) : null;
  try {
    const model = decodeModel(bytes, what);
    const graph = new OnnxGraph(model, { baseDir: baseDir ?? undefined });
    // The ViT pipeline cannot run a Swin; say what the graph is instead of where the ViT
    // matcher stopped.
    if (looksLikeSwin(graph)) throw swinRefusal(graph, filePath);
    const r: Recognition = recognizeVit(graph, options);
    return {
      config: r.config,
      weights: r.weights,
      sourceNames: r.sourceNames,
      family: r.family,
      forms: r.forms,
      variant: r.variant,
      opset: graph.opset,
      irVersion: toNumber(model.irVersion),
      producer: [model.producerName, model.producerVersion].filter((s) => s).join(' '),
      inputName: r.inputName,
      outputName: r.outputName,
      inputDims: r.inputDims,
      fixedBatch: r.fixedBatch,
      path: filePath,
      bindings: r.bindings,
      bytes,
      baseDir,
    };
  } catch (err) {
    if (err instanceof SpdfqError) throw err;
    // A corrupt file can still reach code that assumed well-formed input; report it as a
    // bad file, but mark it "internal" so tests can tell such gaps from deliberate checks.
    throw new SpdfqError('E_ONNX', `internal error while reading ${what} (the file may be corrupt): ${(err as Error).message ?? String(err)}`, { cause: err });
  }
}
