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
// log√2 softmax quantizers (RepQ-ViT) have no QDQ form — QuantizeLinear is uniform — so they
// are written as the quantizer's own formula in standard float ops (log2Site below): the
// exported model is the model the engine evaluated. `log2: 'uniform'` instead writes the
// nearest uniform QDQ quantizer (same range and bits), with a warning, for runtimes that
// only take QDQ graphs; `simulateExported` measures that model in the engine.

import { SpdfqError } from '../errors';
import { buildVitOnnx, GraphHooks } from '../onnx/build-vit';
import { GraphBuilder } from '../onnx/graph-builder';
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
  /** log√2 softmax quantizers as their exact formula in float ops ('exact', the default:
   *  the exported model is the evaluated one) or as the nearest uniform QDQ quantizer
   *  ('uniform': a pure QDQ graph, measured separately). */
  log2?: 'exact' | 'uniform';
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
  /** The activation quantizers as exported (with log2: 'uniform', log√2 replaced by its
   *  uniform form). */
  sites: SiteQuantizer[];
  /** Whether the exported quantizers are exactly the model's (no simulation needed). */
  exact: boolean;
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

/** The log√2 quantizer's dequantized values by level: Δ·2^(−⌈q/2⌉)·(√2 for odd q) in
 *  float32 as native/core/quantizer.h computes them, levels 0 … 2^b − 1, then 0 for the
 *  level 2^b that stands for "below the smallest level". */
export function log2Levels(q: TensorQuantizer): Float32Array {
  const n = 2 ** q.bits;
  const table = new Float32Array(n + 1);
  const sqrt2 = Math.fround(Math.SQRT2);
  for (let i = 0; i < n; i++) table[i] = Math.fround(Math.fround(q.scale * 2 ** -Math.ceil(i / 2)) * (i % 2 === 1 ? sqrt2 : 1));
  return table;
}

/** A log√2 site as the quantizer's own formula in standard ops, five passes:
 *  q = QuantizeLinear(log(Δ/x), ln2/2) = round(−2·log2(x/Δ)) (round half to even, as the
 *  engine's; saturating at 255, which x = 0 reaches through +∞), then the value looked up by
 *  level, 0 from level 2^b on. Level 255 reads 0 too, so that zeros stay zeros at 8 bits.
 *  Runs in any ONNX runtime; agrees with the engine except where the runtime's logarithm
 *  differs in the last bit at a rounding tie, and for 8-bit inputs within a factor √2 of
 *  Δ·2^−127.5 (denormals). */
export function log2Site(g: GraphBuilder, x: string, q: TensorQuantizer, base: string): string {
  const inverseRatio = g.op('Div', [g.floatScalar(`${base}.delta`, q.scale), x]);
  const level = g.op('QuantizeLinear', [
    g.op('Log', [inverseRatio]),
    g.floatScalar(`${base}.half_ln2`, Math.LN2 / 2),
    g.rawTensor(`${base}.level_zero`, DataType.UINT8, [], new Uint8Array([0])),
  ]);
  const table = new Float32Array(256);
  table.set(log2Levels(q).subarray(0, Math.min(255, 2 ** q.bits)));
  const index = g.op('Cast', [level], { to: { int: DataType.INT32 } });
  return g.op('Gather', [g.floatTensor(`${base}.levels`, [256], table), index], { axis: { int: 0 } });
}

/** A uniform site as QuantizeLinear → DequantizeLinear (DequantizeLinear's scale may carry
 *  a following constant factor), with a Clip first when the grid is narrower than the
 *  8-bit container QuantizeLinear saturates to (fewer bits, or TensorRT's [−127, 127]). */
function qdqSite(g: GraphBuilder, x: string, s: TensorQuantizer, base: string, dequantScale: number): string {
  const signed = s.qmin < 0;
  if (s.qmin > (signed ? -128 : 0) || s.qmax < (signed ? 127 : 255)) {
    x = g.op('Clip', [x, g.floatScalar(`${base}.clip_lo`, Math.fround((s.qmin - s.zero) * s.scale)), g.floatScalar(`${base}.clip_hi`, Math.fround((s.qmax - s.zero) * s.scale))]);
  }
  const scale = g.floatScalar(`${base}.scale`, s.scale);
  const zp = g.rawTensor(`${base}.zero_point`, signed ? DataType.INT8 : DataType.UINT8, [], new Uint8Array([s.zero & 0xff]));
  const dq = dequantScale === s.scale ? scale : g.floatScalar(`${base}.dequant_scale`, dequantScale);
  return g.op('DequantizeLinear', [g.op('QuantizeLinear', [x, scale, zp]), dq, zp]);
}

function siteKey(site: SiteName, block?: number): string {
  return block === undefined || block < 0 ? site : `${site === 'reduce_in' ? 'merges' : 'blocks'}.${block}.${site}`;
}

/** The quantizers of a model as graph hooks, and what the export reports about them:
 *  written once for every architecture's graph writer (buildVitOnnx, buildSwinOnnx). */
export interface QuantizerHooks {
  hooks: GraphHooks<SiteName>;
  format: QuantExportFormat;
  opset: number;
  warnings: string[];
  /** The activation quantizers as exported. */
  sites: SiteQuantizer[];
  exact: boolean;
}

export function quantizerHooks(siteQuantizers: SiteQuantizer[], weightQuantizers: WeightQuantizer[], options: QuantExportOptions = {}): QuantizerHooks {
  const format = options.format ?? 'qdq';
  checkExportFormat('export format', format);
  const warnings: string[] = [];
  const log2Mode = options.log2 ?? 'exact';
  if (log2Mode !== 'exact' && log2Mode !== 'uniform') throw new SpdfqError('E_CONFIG', `log2: expected 'exact' or 'uniform', received '${String(log2Mode)}'`);
  const approximate = log2Mode === 'uniform';
  const sites: SiteQuantizer[] = siteQuantizers.map((s) => (s.kind === 'log2' && approximate ? { ...uniformFromLog2(s), site: s.site, block: s.block } : s));
  const log2Count = siteQuantizers.filter((s) => s.kind === 'log2').length;
  if (log2Count > 0 && approximate) {
    warnings.push(
      `${log2Count} log√2 softmax quantizers have no ONNX QDQ form: exported as uniform ${siteQuantizers.find((s) => s.kind === 'log2')!.bits}-bit quantizers over the same range; the exported model's accuracy is measured separately`,
    );
  }
  const maxWeightBits = Math.max(...weightQuantizers.map((w) => w.bits));
  if (format === 'qdq-int4' && maxWeightBits > 4) warnings.push(`format '${format}' stores 4-bit weights; layers with more bits stay 8-bit QDQ`);
  const bySite = new Map(sites.map((s) => [siteKey(s.site, s.block), s]));
  const byWeight = new Map(weightQuantizers.map((w) => [w.name, w]));
  // int4 weights (DequantizeLinear of uint4/int4, also the patch Conv's in 'matmulnbits') need opset 21.
  const opset = format === 'qdq' ? 13 : 21;
  const uses = new Map<string, number>();
  // A site can be used twice (the distilled head reads two tokens): unique names.
  const baseName = (site: SiteName, block: number | undefined): string => {
    const key = siteKey(site, block);
    const use = uses.get(key) ?? 0;
    uses.set(key, use + 1);
    return use === 0 ? key : `${key}.${use}`;
  };
  const hooks: GraphHooks<SiteName> = {
    activation(g, site, block, tensor) {
      const s = bySite.get(siteKey(site, block));
      if (!s) return tensor;
      const base = baseName(site, block);
      return s.kind === 'log2' ? log2Site(g, tensor, s, base) : qdqSite(g, tensor, s, base, s.scale);
    },
    scaledQuery(g, block, q, scale) {
      // Q̂·(1/√d) with the scale in the DequantizeLinear: the product differs from the
      // engine's (q̂·k̂ᵀ)·(1/√d) by float rounding only, and MatMul then reads two
      // DequantizeLinear outputs, which runtimes fuse into an integer matmul.
      const s = bySite.get(siteKey('q', block));
      if (!s || s.kind !== 'uniform') return null;
      return qdqSite(g, q, s, baseName('q', block), Math.fround(s.scale * scale));
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
  return { hooks, format, opset, warnings, sites, exact: !(approximate && log2Count > 0) };
}

export function exportQuantizedOnnx(q: QuantizedModelParts, options: QuantExportOptions = {}): QuantExportResult {
  const { hooks, format, opset, warnings, sites, exact } = quantizerHooks(q.sites, q.weightQuantizers, options);
  const bytes = buildVitOnnx(q.config, q.getWeights(), {
    opset,
    hooks,
    inputName: options.inputName,
    outputName: options.outputName,
    producer: 'spdfq-native (quantized)',
  });
  return { bytes, format, opset, warnings, sites, weights: q.weightQuantizers, exact };
}
