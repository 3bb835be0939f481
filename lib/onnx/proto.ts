// Decoding and encoding ONNX ModelProto bytes with onnx-proto (protobufjs), turning every
// failure into SpdfqError('E_ONNX'). onnx-proto is generated from ONNX 1.10 (IR 8): newer
// fields are dropped on decode, which is why export-fp32.ts rewrites bytes instead of
// re-encoding a decoded model.

import { onnx } from 'onnx-proto';
import { SpdfqError } from '../errors';

export { onnx };

/** int64 fields decode as Long objects (or plain numbers when Long is absent). */
export type IntLike = number | { toNumber(): number };

/** Long → number. Values beyond 2^53 (Slice's INT64_MAX "to the end") lose precision,
 *  which is harmless: they are only ever compared with tensor sizes. */
export function toNumber(v: IntLike | null | undefined): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number') return v;
  return v.toNumber();
}

/** The default ("ai.onnx") operator domain is spelled '' or 'ai.onnx'. */
export function isDefaultDomain(domain: string | null | undefined): boolean {
  return !domain || domain === 'ai.onnx';
}

export function decodeModel(bytes: Uint8Array, what: string): onnx.ModelProto {
  if (bytes.length === 0) throw new SpdfqError('E_ONNX', `${what} is empty, not an ONNX model`);
  let model: onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    // protobufjs reports truncation as "index out of range: a + b > c" and corruption as
    // "invalid wire type" — both mean the file is not a complete ModelProto.
    const detail = err instanceof Error ? err.message : String(err);
    throw new SpdfqError(
      'E_ONNX',
      `${what} is not a valid ONNX model (protobuf decoding failed: ${detail}); the file may be truncated or corrupt`,
      { cause: err },
    );
  }
  checkModelHeader(model, what);
  return model;
}

/** Fields every runnable model has; a truncated file that still decodes usually lacks one. */
function checkModelHeader(model: onnx.ModelProto, what: string): void {
  const ir = toNumber(model.irVersion);
  if (!Number.isInteger(ir) || ir < 3 || ir > 100) {
    throw new SpdfqError('E_ONNX', `${what}: ir_version ${ir} is not a valid ONNX IR version (expected 3..11); the file may be truncated or corrupt`);
  }
  if (!model.graph) {
    throw new SpdfqError('E_ONNX', `${what} has no graph; the file may be truncated or corrupt`);
  }
  const opset = defaultOpset(model);
  if (opset === null) {
    throw new SpdfqError(
      'E_ONNX',
      `${what} imports no version of the default ONNX operator set (opset_import is ${model.opsetImport.length === 0 ? 'empty' : 'missing ai.onnx'}); the file may be truncated or corrupt`,
    );
  }
  if (opset < 7 || opset > 100) {
    throw new SpdfqError('E_ONNX', `${what}: default opset ${opset} is out of range (7..100); the file may be corrupt`);
  }
}

export function defaultOpset(model: onnx.IModelProto): number | null {
  for (const imp of model.opsetImport ?? []) {
    if (isDefaultDomain(imp.domain)) return toNumber(imp.version);
  }
  return null;
}

/** The lowest IR version that can carry a given opset (onnx/helper.py VERSION_TABLE). */
export function irVersionForOpset(opset: number): number {
  if (opset <= 8) return 3;
  if (opset <= 10) return 5;
  if (opset <= 11) return 6;
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  if (opset <= 22) return 10;
  return 11;
}
