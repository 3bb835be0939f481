// Public API of spdfq-native.
export { createVit, randomVitWeights, packWeights, VitModel } from './vit';
export type { VitOptions, ForwardOptions, ForwardResult, BackwardOptions, BackwardResult, WeightMap } from './vit';
export { completeVitConfig, vitParamSpecs, tokenCount, patchGrid, prefixTokens } from './vit-config';
export type { VitConfig, VitConfigInput, ParamSpec } from './vit-config';
export { createSwin, completeSwinConfig, randomSwinWeights, swinParamSpecs, swinAttentionShape, SwinModel } from './swin';
export type { SwinConfig, SwinConfigInput, SwinOptions, SwinTensor, SwinBackwardOptions, SwinBackwardResult } from './swin';
export { SpdfqError } from './errors';
export type { SpdfqErrorCode } from './errors';
export { nativeAddon } from './native';
export { resolveDevice } from './vit';
export type { VitDevice, ResolvedDevice } from './vit';
export type { CudaDeviceInfo, CudaDeviceList } from './native';

// ONNX
export { loadModel, importOnnx, exportFp32, buildVitOnnx, readPreprocessing } from './onnx';
export type { LoadedModel, ImportedModel, Preprocessing } from './onnx';
export { importSwinOnnx, loadSwinOnnx, buildSwinOnnx, exportSwinFp32 } from './onnx';
export type { ImportedSwin, SwinImportOptions, BuildSwinOptions } from './onnx';

// Calibration images
export { synthesize } from './synth/synthesize';
export type { SynthesisResult } from './synth/synthesize';
export type { SynthesisOptions, SynthMethod } from './synth/options';

// Quantization and export
export { quantize, QuantizedVit } from './quant/quantize';
export type { QuantOptions, BitsPreset } from './quant/quant-config';
export { exportQuantizedOnnx, QUANT_EXPORT_FORMATS } from './quant/export-onnx';
export { simulateExported } from './quant/quantize';
export { QuantizedSwin } from './quant/quantize-swin';
export { exportQuantizedSwinOnnx } from './quant/export-swin-onnx';
export { planSwinQuantization } from './quant/swin-quant-config';
export type { MatMulNBitsOptions } from './quant/matmul-nbits';
export type { QuantExportFormat, QuantExportResult } from './quant/export-onnx';

// Evaluation and the whole workflow
export { evaluate } from './eval/evaluate';
export type { Evaluation } from './eval/evaluate';
export { loadEvalSet } from './data/eval-set';
export { run, DEFAULT_MODEL } from './run/run';
export type { RunOptions, RunResults } from './run/run';

/** Compute backends this build of the addon supports ('cpu', and 'cuda' when built with CUDA). */
export function backends(): string[] {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('./native') as typeof import('./native')).nativeAddon().backends();
}
