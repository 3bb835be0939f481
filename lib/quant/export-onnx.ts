// Quantized ONNX export: the quantized ViT as a QDQ graph that ONNX Runtime and TensorRT
// run. The graph is our clean timm-style ViT (lib/onnx/build-vit.ts) with
//  - every quantized activation site as QuantizeLinear → DequantizeLinear (per tensor),
//    preceded by a Clip to the quantizer's range when its grid is narrower than the 8-bit
//    container (QDQ saturates to 8 bits; clipping first gives exactly our grid);
//  - every quantized weight stored as integers with a per-output-channel
//    DequantizeLinear: uint8/int8 at opset 13 ('qdq'), or uint4/int4 at opset 21
//    ('qdq-int4'; ONNX Runtime fuses int4 DequantizeLinear → MatMul into MatMulNBits);
//  - or ('matmulnbits') every Linear as an explicit com.microsoft MatMulNBits node
//    (matmul-nbits.ts), the patch Conv as in 'qdq-int4'.
// log√2 softmax quantizers have no QDQ form (QuantizeLinear is uniform: q = round(x/scale) + zero): they are exported as the
// nearest uniform quantizer (same range, same bits) with a warning, and the caller can
// measure that model in simulation with `simulateExported`.

import { SpdfqError } from '../errors';
import { buildVitOnnx, VitGraphHooks } from '../onnx/build-vit';
import { DataType } from '../onnx/tensor-data';
import { VitConfig } from '../vit-config';
import { SiteName, SiteQuantizer, TensorQuantizer, WeightQuantizer } from '../native';
import { matMulNBits, MatMulNBitsOptions, packRows } from './matmul-nbits';
import { roundHalfEven } from './rounding';

/** What the export reads of a quantized model (QuantizedVit has it): its architecture, the
 *  full-precision weights behind the quantizers, and the quantizers. */
export interface QuantizedModelParts {
  readonly config: VitConfig;
  readonly sites: SiteQuantizer[];
  readonly weightQuantizers: WeightQuantizer[];
  getWeights(): Map<string, Float32Array>;
}

export const QUANT_EXPORT_FORMATS = ['qdq', 'qdq-int4', 'matmulnbits'] as const;
export type QuantExportFormat = (typeof QUANT_EXPORT_FORMATS)[number];

/** Throws E_CONFIG naming `label` unless `format` is one of QUANT_EXPORT_FORMATS: callers
 *  check before minutes of work, the export checks again. */
export function checkExportFormat(label: string, format: unknown): asserts format is QuantExportFormat {
  if (!(QUANT_EXPORT_FORMATS as readonly unknown[]).includes(format)) {
    throw new SpdfqError('E_CONFIG', `${label}: expected one of ${QUANT_EXPORT_FORMATS.join(', ')}, received '${String(format)}'`);
  }
}

export interface QuantExportOptions {
  format?: QuantExportFormat;
  /** Layout of the 'matmulnbits' format's nodes (block size, accuracy level). */
  matmulNBits?: MatMulNBitsOptions;
  inputName?: string;
  outputName?: string;
}

export interface QuantExportResult {
  bytes: Uint8Array;
  format: QuantExportFormat;
  opset: number;
  warnings: string[];
  /** The activation quantizers as exported (log√2 replaced by its uniform form). */
  sites: SiteQuantizer[];
  weights: WeightQuantizer[];
}

/** log√2 (Δ, b bits) → uniform over [0, Δ] with b bits: the same range and level count. */
export function uniformFromLog2(q: TensorQuantizer): TensorQuantizer {
  const levels = 2 ** q.bits - 1;
  return { kind: 'uniform', bits: q.bits, scale: q.scale / levels, zero: 0, qmin: 0, qmax: levels };
}

/** Integer codes of a weight row-block exactly as the engine's fake quantization computes them. */
function quantizeRows(data: Float32Array, cols: number, q: WeightQuantizer, channelAxis: 0 | 1): Int32Array {
  const out = new Int32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const ch = channelAxis === 0 ? Math.floor(i / cols) : i % cols;
    const s = q.scales[ch];
    const v = Math.min(Math.max(Math.fround(data[i] / s), q.qmin - q.zeros[ch] - 1), q.qmax - q.zeros[ch] + 1);
    out[i] = Math.min(Math.max(roundHalfEven(v) + q.zeros[ch], q.qmin), q.qmax);
  }
  return out;
}

function siteKey(site: SiteName, block?: number): string {
  return block === undefined || block < 0 ? site : `blocks.${block}.${site}`;
}

export function exportQuantizedOnnx(q: QuantizedModelParts, options: QuantExportOptions = {}): QuantExportResult {
  const format = options.format ?? 'qdq';
  checkExportFormat('export format', format);
  const warnings: string[] = [];
  const sites: SiteQuantizer[] = q.sites.map((s) => (s.kind === 'log2' ? { ...uniformFromLog2(s), site: s.site, block: s.block } : s));
  const log2Count = q.sites.filter((s) => s.kind === 'log2').length;
  if (log2Count > 0) {
    warnings.push(
      `${log2Count} log√2 softmax quantizers have no ONNX QDQ form: exported as uniform ${q.sites.find((s) => s.kind === 'log2')!.bits}-bit quantizers over the same range; the exported model's accuracy is measured separately`,
    );
  }
  const maxWeightBits = Math.max(...q.weightQuantizers.map((w) => w.bits));
  if (format === 'qdq-int4' && maxWeightBits > 4) warnings.push(`format '${format}' stores 4-bit weights; layers with more bits stay 8-bit QDQ`);
  const bySite = new Map(sites.map((s) => [siteKey(s.site, s.block), s]));
  const byWeight = new Map(q.weightQuantizers.map((w) => [w.name, w]));
  // int4 weights (DequantizeLinear of uint4/int4, also the patch Conv's in 'matmulnbits') need opset 21.
  const opset = format === 'qdq' ? 13 : 21;
  const uses = new Map<string, number>();
  const hooks: VitGraphHooks = {
    activation(g, site, block, tensor) {
      const s = bySite.get(siteKey(site, block));
      if (!s) return tensor;
      const signed = s.qmin < 0;
      let x = tensor;
      // A site can be used twice (the distilled head reads two tokens): unique names.
      const key = siteKey(site, block);
      const use = uses.get(key) ?? 0;
      uses.set(key, use + 1);
      const base = use === 0 ? key : `${key}.${use}`;
      // Clip when the grid is narrower than the 8-bit container QuantizeLinear saturates to
      // (fewer bits, or TensorRT's symmetric [−127, 127]).
      if (s.qmin > (signed ? -128 : 0) || s.qmax < (signed ? 127 : 255)) {
        x = g.op('Clip', [x, g.floatScalar(`${base}.clip_lo`, Math.fround((s.qmin - s.zero) * s.scale)), g.floatScalar(`${base}.clip_hi`, Math.fround((s.qmax - s.zero) * s.scale))]);
      }
      const scale = g.floatScalar(`${base}.scale`, s.scale);
      const zp = g.rawTensor(`${base}.zero_point`, signed ? DataType.INT8 : DataType.UINT8, [], new Uint8Array([s.zero & 0xff]));
      return g.op('DequantizeLinear', [g.op('QuantizeLinear', [x, scale, zp]), scale, zp]);
    },
    weight(g, name, dims, data, channelAxis) {
      const w = byWeight.get(name);
      if (!w) return null;
      const cols = dims.slice(1).reduce((a, b) => a * b, 1);
      const codes = quantizeRows(data, cols, w, channelAxis === 0 ? 0 : 1);
      const signed = w.qmin < 0;
      const four = w.bits <= 4 && format !== 'qdq';
      const type = four ? (signed ? DataType.INT4 : DataType.UINT4) : signed ? DataType.INT8 : DataType.UINT8;
      const bytes = four ? packRows(codes, 1, codes.length, 4) : Uint8Array.from(codes, (v) => v & 0xff);
      const channels = dims[channelAxis];
      const zeros = Int32Array.from(w.zeros, (z) => z);
      const zbytes = four ? packRows(zeros, 1, zeros.length, 4) : Uint8Array.from(zeros, (v) => v & 0xff);
      const qw = g.rawTensor(`${name}.quantized`, type, dims, bytes);
      const sc = g.floatTensor(`${name}.scale`, [channels], Float32Array.from(w.scales));
      const zp = g.rawTensor(`${name}.zero_point`, type, [channels], zbytes);
      return g.op('DequantizeLinear', [qw, sc, zp], { axis: { int: channelAxis } });
    },
    matmul(g, name, x, weightOutIn, outSize, inSize) {
      const w = byWeight.get(name);
      if (format !== 'matmulnbits' || !w) return null;
      const codes = quantizeRows(weightOutIn, inSize, w, 0);
      return matMulNBits(g, name, x, codes, w, outSize, inSize, options.matmulNBits);
    },
  };
  const bytes = buildVitOnnx(q.config, q.getWeights(), {
    opset,
    hooks,
    inputName: options.inputName,
    outputName: options.outputName,
    producer: 'spdfq-native (quantized)',
  });
  return { bytes, format, opset, warnings, sites, weights: q.weightQuantizers };
}
