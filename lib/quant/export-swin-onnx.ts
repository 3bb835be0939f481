// Quantized ONNX export of a Swin (docs/swin.md, "Stage: quantization"): buildSwinOnnx's
// graph with the quantizers of export-onnx.ts (quantizerHooks, the ViT export's own) at the
// engine's sites — QuantizeLinear → DequantizeLinear per activation site, log√2 softmax
// quantizers as their exact formula (log2Site) — and the weights in every format the ViT has:
// per-output-channel DequantizeLinear of integer weights ('qdq' opset 17, 'qdq-int4' opset
// 21), or every Linear (qkv, proj, mlp.0, mlp.3, each merge's reduction, the head) as one
// com.microsoft MatMulNBits node ('matmulnbits' opset 21, matmul-nbits.ts; the patch Conv as
// in 'qdq-int4'). So the exported model computes the engine's simulation.

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
  const { hooks, format, opset: quantOpset, warnings, sites, exact } = quantizerHooks(q.sites, q.weightQuantizers, options);
  // The Swin writer starts at opset 14; QuantizeLinear/DequantizeLinear keep their opset-13
  // form up to 18, so 'qdq' is written at 17 (with LayerNormalization), 'qdq-int4' and
  // 'matmulnbits' at 21.
  const opset = Math.max(quantOpset, 17);
  const bytes = buildSwinOnnx(q.config, q.getWeights(), {
    opset,
    hooks,
    inputName: options.inputName,
    outputName: options.outputName,
    producer: 'spdfq-native (quantized)',
  });
  return { bytes, format, opset, warnings, sites, weights: q.weightQuantizers, exact };
}
