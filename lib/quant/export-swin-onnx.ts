// Quantized ONNX export of a Swin (docs/swin.md, "Stage: quantization"): buildSwinOnnx's
// graph with the quantizers of export-onnx.ts at the engine's sites — QuantizeLinear →
// DequantizeLinear per activation site, per-output-channel DequantizeLinear of integer
// weights ('qdq' opset 17, 'qdq-int4' opset 21), log√2 softmax quantizers as their exact
// formula (log2Site) — so the exported model computes the engine's simulation. The
// 'matmulnbits' format is ViT-only for now.

import { SpdfqError } from '../errors';
import { buildSwinOnnx } from '../onnx/build-swin';
import { SiteQuantizer, WeightQuantizer } from '../native';
import { SwinConfig } from '../swin';
import { QuantExportOptions, QuantExportResult, quantizerHooks } from './export-onnx';

/** What the export reads of a quantized Swin (QuantizedSwin has it). */
export interface QuantizedSwinParts {
  readonly config: SwinConfig;
  readonly sites: SiteQuantizer[];
  readonly weightQuantizers: WeightQuantizer[];
  getWeights(): Map<string, Float32Array>;
}

export function exportQuantizedSwinOnnx(q: QuantizedSwinParts, options: QuantExportOptions = {}): QuantExportResult {
  if (options.format === 'matmulnbits') {
    throw new SpdfqError('E_CONFIG', "format 'matmulnbits' is not written for Swin models yet; use 'qdq' or 'qdq-int4'");
  }
  const h = quantizerHooks(q.sites, q.weightQuantizers, options);
  const { hooks, format, warnings, sites, exact } = h;
  // The Swin writer starts at opset 14; QuantizeLinear/DequantizeLinear keep their opset-13
  // form up to 18, so 'qdq' is written at 17 (with LayerNormalization), 'qdq-int4' at 21.
  const opset = Math.max(h.opset, 17);
  const bytes = buildSwinOnnx(q.config, q.getWeights(), {
    opset,
    hooks: { activation: hooks.activation, weight: hooks.weight, scaledQuery: hooks.scaledQuery },
    inputName: options.inputName,
    outputName: options.outputName,
    producer: 'spdfq-native (quantized)',
  });
  return { bytes, format, opset, warnings, sites, weights: q.weightQuantizers, exact };
}
