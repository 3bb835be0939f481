// Public surface of the ONNX layer: import (with or without the engine), fp32 export,
// the clean ViT and Swin graph writers, and the preprocessing sidecar reader.

export { importOnnx, importBytes } from './import-onnx';
export type { ImportedModel, ImportOptions } from './import-onnx';
export { loadModel } from './load-model';
export type { LoadedModel, LoadOptions } from './load-model';
export { exportFp32, exportFp32Bytes } from './export-fp32';
export { buildVitOnnx, MIN_BUILD_OPSET, MAX_BUILD_OPSET } from './build-vit';
export type { BuildVitOptions, VitGraphHooks, VitSite } from './build-vit';
export { buildSwinOnnx, MIN_SWIN_OPSET, MAX_SWIN_OPSET } from './build-swin';
export type { BuildSwinOptions } from './build-swin';
export { exportSwinFp32, exportSwinFp32Bytes } from './export-swin';
export { GraphBuilder } from './graph-builder';
export { readPreprocessing, IMAGENET_MEAN, IMAGENET_STD, DEFAULT_CROP_PCT, DEFAULT_INTERPOLATION } from './preprocess';
export type { Preprocessing, PreprocessOptions } from './preprocess';
export { vitCost } from './vit-cost';
export type { VitFamily, GraphForms } from './recognize';
export { SUPPORTED_FAMILIES } from './unrecognized';
export { importSwinOnnx, importSwinBytes, loadSwinOnnx, describeSwin, SUPPORTED_SWIN } from './import-swin';
export type { ImportedSwin, SwinImportOptions } from './import-swin';
