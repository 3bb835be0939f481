// Loader for the PyTorch reference fixtures in test/fixtures/engine, written by
// scripts/fixtures/make_engine_fixtures.py: <name>.json holds the config, batch size and a
// tensor directory; <name>.bin holds float32 little-endian data, tensors back to back,
// each tensor's `offset` counted in floats.

import * as fs from 'fs';
import * as path from 'path';
import { VitConfig, VitConfigInput, completeVitConfig, shapeSize, vitParamSpecs } from '../../lib/vit-config';

export const ENGINE_FIXTURE_DIR = path.resolve(__dirname, '..', 'fixtures', 'engine');

export interface FixtureTensor {
  shape: number[];
  data: Float32Array;
}

export interface EngineFixture {
  name: string;
  config: VitConfig;
  batch: number;
  tensors: Map<string, FixtureTensor>;
}

const CONFIG_FIELDS: readonly (keyof VitConfig)[] = [
  'imageHeight', 'imageWidth', 'channels', 'patchSize', 'embedDim', 'depth', 'numHeads', 'mlpDim',
  'qkvBias', 'classToken', 'distToken', 'pooling', 'normPlacement', 'finalNorm', 'layerNormEps',
  'activation', 'patchInputNorm', 'patchOutputNorm', 'embedNorm', 'numClasses',
];

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

/** Fixture names (the .json files in test/fixtures/engine), sorted. */
export function listEngineFixtures(): string[] {
  return fs
    .readdirSync(ENGINE_FIXTURE_DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

export function loadEngineFixture(name: string): EngineFixture {
  const where = `engine fixture '${name}'`;
  const meta: unknown = JSON.parse(fs.readFileSync(path.join(ENGINE_FIXTURE_DIR, `${name}.json`), 'utf8'));
  if (!isRecord(meta)) throw new Error(`${where}: JSON is not an object`);
  const rawConfig = meta.config;
  if (!isRecord(rawConfig)) throw new Error(`${where}: missing config`);
  for (const f of CONFIG_FIELDS) {
    if (!(f in rawConfig)) throw new Error(`${where}: config lacks '${f}'`);
  }
  // Every field is present, so completion only validates (it fills nothing in).
  const config = completeVitConfig(rawConfig as VitConfigInput);
  for (const f of CONFIG_FIELDS) {
    if (config[f] !== rawConfig[f]) throw new Error(`${where}: config field '${f}' is not canonical`);
  }
  const batch = meta.batch;
  if (!isNonNegInt(batch) || batch === 0) throw new Error(`${where}: bad batch`);
  if (!isRecord(meta.tensors)) throw new Error(`${where}: missing tensors`);

  const bytes = fs.readFileSync(path.join(ENGINE_FIXTURE_DIR, `${name}.bin`));
  if (bytes.length % 4 !== 0) throw new Error(`${where}: .bin size ${bytes.length} is not a multiple of 4`);
  const totalFloats = bytes.length / 4;

  const tensors = new Map<string, FixtureTensor>();
  for (const [key, entry] of Object.entries(meta.tensors)) {
    if (!isRecord(entry)) throw new Error(`${where}: tensor '${key}' is not an object`);
    const { shape, offset, length } = entry;
    if (!Array.isArray(shape) || !shape.every(isNonNegInt)) throw new Error(`${where}: tensor '${key}' has a bad shape`);
    if (!isNonNegInt(offset) || !isNonNegInt(length)) throw new Error(`${where}: tensor '${key}' has a bad offset/length`);
    const dims = shape.slice() as number[];
    if (shapeSize(dims) !== length) throw new Error(`${where}: tensor '${key}' length ${length} != shape ${dims.join('x')}`);
    if (offset + length > totalFloats) throw new Error(`${where}: tensor '${key}' runs past the end of the .bin`);
    // Copy into a fresh, aligned buffer; Buffer views may start at any byte offset.
    const data = new Float32Array(length);
    const view = new DataView(bytes.buffer, bytes.byteOffset + offset * 4, length * 4);
    for (let i = 0; i < length; i++) data[i] = view.getFloat32(i * 4, true);
    tensors.set(key, { shape: dims, data });
  }
  return { name: typeof meta.name === 'string' ? meta.name : name, config, batch, tensors };
}

/** The `param.` tensors keyed by timm name, in vitParamSpecs order; throws if the fixture
 *  and vitParamSpecs disagree on names or shapes (regenerate the fixtures if they do). */
export function fixtureParams(fx: EngineFixture): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  const specs = vitParamSpecs(fx.config);
  for (const spec of specs) {
    const t = fx.tensors.get(`param.${spec.name}`);
    if (!t) throw new Error(`engine fixture '${fx.name}': no tensor param.${spec.name}`);
    if (t.shape.length !== spec.shape.length || t.shape.some((d, i) => d !== spec.shape[i])) {
      throw new Error(
        `engine fixture '${fx.name}': param.${spec.name} has shape [${t.shape}], vitParamSpecs says [${spec.shape}]`,
      );
    }
    out.set(spec.name, t.data);
  }
  const extra = [...fx.tensors.keys()].filter((k) => k.startsWith('param.') && !out.has(k.slice('param.'.length)));
  if (extra.length > 0) throw new Error(`engine fixture '${fx.name}': unexpected ${extra.join(', ')}`);
  return out;
}
