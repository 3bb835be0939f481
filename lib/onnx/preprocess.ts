// Image preprocessing for an imported model. Resize, crop, mean and std are not part of an
// exported ViT graph, so they come from a sidecar JSON next to the model (or options),
// with ImageNet defaults. Accepted sidecar spellings:
//   timm pretrained_cfg:   { "mean": [...], "std": [...], "crop_pct": 0.9, "interpolation": "bicubic", "input_size": [3, 224, 224] }
//   HuggingFace preprocessor_config.json: { "image_mean": [...], "image_std": [...], "resample": 3, "size": {"height": 224, "width": 224}, "crop_pct": 0.875 }
//   ours:                  { "mean", "std", "cropPct", "interpolation", "resizeShorter", "classes" }
// Class names, when present ("classes": [...], or HuggingFace's "id2label": { "0": ... }),
// label reports; they are optional.
// Lookup order: options.sidecar, <model>.preprocess.json, preprocessor_config.json in the
// model's folder, then the defaults below.

import * as fs from 'fs';
import * as path from 'path';
import { SpdfqError } from '../errors';
import { VitConfig } from '../vit-config';

/** torchvision / timm IMAGENET_DEFAULT_MEAN and _STD (RGB, on [0, 1] pixels). */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406];
export const IMAGENET_STD = [0.229, 0.224, 0.225];
/** timm's DEFAULT_CROP_PCT: resize the shorter side to size / 0.875, then center-crop. */
export const DEFAULT_CROP_PCT = 0.875;
/** timm's ViT/DeiT configs use bicubic resizing. */
export const DEFAULT_INTERPOLATION: Interpolation = 'bicubic';

export type Interpolation = 'nearest' | 'bilinear' | 'bicubic';

export interface Preprocessing {
  /** Final image size (the model's). */
  height: number;
  width: number;
  /** Shorter side before the center crop: round(min(height, width) / cropPct). */
  resizeShorter: number;
  cropPct: number;
  interpolation: Interpolation;
  /** Per channel, applied as (pixel/255 - mean) / std. */
  mean: number[];
  std: number[];
  /** Where these values came from: a file path, or 'defaults'. */
  source: string;
  /** Class names by index, when the sidecar names them. */
  classes?: string[];
}

export interface PreprocessOptions {
  /** Explicit sidecar JSON path. */
  sidecar?: string;
  /** Values that override the sidecar and the defaults (e.g. from CLI options). */
  overrides?: Partial<Pick<Preprocessing, 'mean' | 'std' | 'cropPct' | 'interpolation' | 'resizeShorter'>>;
}

/** HF `resample` values are PIL filter ids. */
const PIL_RESAMPLE: Record<number, Interpolation> = { 0: 'nearest', 2: 'bilinear', 3: 'bicubic' };

function bad(source: string, message: string): never {
  throw new SpdfqError('E_CONFIG', `preprocessing (${source}): ${message}`);
}

function findSidecar(modelPath: string | null, explicit: string | undefined): string | null {
  if (explicit !== undefined) {
    if (!fs.existsSync(explicit)) throw new SpdfqError('E_IO', `preprocessing sidecar '${explicit}' not found`);
    return explicit;
  }
  if (!modelPath) return null;
  const candidates = [modelPath.replace(/\.onnx$/i, '') + '.preprocess.json', path.join(path.dirname(modelPath), 'preprocessor_config.json')];
  return candidates.find((c) => fs.existsSync(c)) ?? null;
}

function numberList(source: string, key: string, v: unknown, channels: number): number[] {
  if (!Array.isArray(v) || v.length !== channels || v.some((x) => typeof x !== 'number' || !Number.isFinite(x))) {
    bad(source, `'${key}' must be a list of ${channels} numbers (one per channel), found ${JSON.stringify(v)}`);
  }
  return v as number[];
}

/** What the preprocessing depends on: the input and the classes (a ViT's or a Swin's config). */
export type PreprocessedInput = Pick<VitConfig, 'channels' | 'imageHeight' | 'imageWidth' | 'numClasses'>;

export function readPreprocessing(modelPath: string | null, config: PreprocessedInput, options: PreprocessOptions = {}): Preprocessing {
  const file = findSidecar(modelPath, options.sidecar);
  let json: Record<string, unknown> = {};
  const source = file ?? 'defaults';
  if (file) {
    try {
      json = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new SpdfqError('E_CONFIG', `preprocessing sidecar '${file}' is not valid JSON: ${(err as Error).message}`, { cause: err });
    }
    if (json === null || typeof json !== 'object' || Array.isArray(json)) bad(source, 'expected a JSON object');
  }
  const C = config.channels;
  const defaultsFor = (values: number[]) => (C === values.length ? values : new Array(C).fill(values.reduce((a, b) => a + b, 0) / values.length));
  const rawMean = options.overrides?.mean ?? json.mean ?? json.image_mean;
  const rawStd = options.overrides?.std ?? json.std ?? json.image_std;
  const mean = rawMean === undefined ? defaultsFor(IMAGENET_MEAN) : numberList(source, 'mean', rawMean, C);
  const std = rawStd === undefined ? defaultsFor(IMAGENET_STD) : numberList(source, 'std', rawStd, C);
  if (std.some((s) => !(s > 0))) bad(source, `'std' values must be positive, found [${std.join(', ')}]`);

  const cropPct = options.overrides?.cropPct ?? json.cropPct ?? json.crop_pct ?? DEFAULT_CROP_PCT;
  if (typeof cropPct !== 'number' || !(cropPct > 0 && cropPct <= 1)) bad(source, `crop_pct must be in (0, 1], found ${JSON.stringify(cropPct)}`);
  let interpolation: unknown = options.overrides?.interpolation ?? json.interpolation;
  if (interpolation === undefined && typeof json.resample === 'number') interpolation = PIL_RESAMPLE[json.resample];
  interpolation ??= DEFAULT_INTERPOLATION;
  if (interpolation !== 'nearest' && interpolation !== 'bilinear' && interpolation !== 'bicubic') {
    bad(source, `interpolation must be 'nearest', 'bilinear' or 'bicubic', found ${JSON.stringify(interpolation)}`);
  }
  checkDeclaredSize(source, json, config);
  const shorter = Math.min(config.imageHeight, config.imageWidth);
  const resizeShorter = options.overrides?.resizeShorter ?? (typeof json.resizeShorter === 'number' ? json.resizeShorter : Math.round(shorter / cropPct));
  if (!Number.isInteger(resizeShorter) || resizeShorter < shorter) bad(source, `resizeShorter must be an integer ≥ ${shorter}, found ${resizeShorter}`);
  const classes = classNames(source, json, config.numClasses);
  return { height: config.imageHeight, width: config.imageWidth, resizeShorter, cropPct, interpolation, mean, std, source, ...(classes ? { classes } : {}) };
}

/** `classes` (a list) or `id2label` (index → name), one name per output class. */
function classNames(source: string, json: Record<string, unknown>, numClasses: number): string[] | undefined {
  let names: unknown = json.classes;
  if (names === undefined && json.id2label && typeof json.id2label === 'object') {
    const map = json.id2label as Record<string, unknown>;
    names = Array.from({ length: Object.keys(map).length }, (_, i) => map[String(i)]);
  }
  if (names === undefined) return undefined;
  if (!Array.isArray(names) || names.length !== numClasses || names.some((n) => typeof n !== 'string')) {
    bad(source, `class names ('classes' or 'id2label') must be ${numClasses} strings, one per model output, found ${JSON.stringify(names).slice(0, 200)}`);
  }
  return names as string[];
}

/** A sidecar that names a different input size than the graph is a mistake worth catching. */
function checkDeclaredSize(source: string, json: Record<string, unknown>, config: PreprocessedInput): void {
  let h: unknown;
  let w: unknown;
  if (Array.isArray(json.input_size) && json.input_size.length === 3) [, h, w] = json.input_size;
  else if (json.size && typeof json.size === 'object' && 'height' in json.size) ({ height: h, width: w } = json.size as { height: unknown; width: unknown });
  if (h === undefined) return;
  if (h !== config.imageHeight || w !== config.imageWidth) {
    bad(source, `declares input size ${String(h)}x${String(w)} but the model takes ${config.imageHeight}x${config.imageWidth}`);
  }
}
