// Loader for the Swin reference fixtures in test/fixtures/swin, written by
// scripts/fixtures/swin_fixture.py in the engine fixtures' format: <name>.json holds the
// config, batch and a tensor directory; <name>.bin float32 little-endian data, tensors back
// to back, each `offset` counted in floats.

import * as fs from 'fs';
import * as path from 'path';
import type { SwinConfigInput } from '../../lib/swin';

export const SWIN_FIXTURE_DIR = path.resolve(__dirname, '..', 'fixtures', 'swin');

export interface SwinFixture {
  name: string;
  config: SwinConfigInput;
  batch: number;
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
  /** The ONNX export's record, when this fixture has one. */
  onnx?: { file: string; opset: number };
}

/** Fixtures are the <name>.json files with a <name>.bin (onnx_exports.json is the ONNX
 *  exports' manifest, not a fixture). */
export function listSwinFixtures(): string[] {
  return fs
    .readdirSync(SWIN_FIXTURE_DIR)
    .filter((f) => f.endsWith('.json') && fs.existsSync(path.join(SWIN_FIXTURE_DIR, `${f.slice(0, -5)}.bin`)))
    .map((f) => f.slice(0, -5))
    .sort();
}

export function loadSwinFixture(name: string): SwinFixture {
  const meta = JSON.parse(fs.readFileSync(path.join(SWIN_FIXTURE_DIR, `${name}.json`), 'utf8')) as {
    config: SwinConfigInput; batch: number; onnx?: { file: string; opset: number };
    tensors: Record<string, { shape: number[]; offset: number; length: number }>;
  };
  const bytes = fs.readFileSync(path.join(SWIN_FIXTURE_DIR, `${name}.bin`));
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [key, t] of Object.entries(meta.tensors)) {
    if (t.shape.reduce((a, b) => a * b, 1) !== t.length) throw new Error(`swin fixture ${name}: ${key} length != shape`);
    if ((t.offset + t.length) * 4 > bytes.length) throw new Error(`swin fixture ${name}: ${key} runs past the .bin`);
    const data = new Float32Array(t.length);
    const view = new DataView(bytes.buffer, bytes.byteOffset + t.offset * 4, t.length * 4);
    for (let i = 0; i < t.length; i++) data[i] = view.getFloat32(i * 4, true);
    tensors.set(key, { shape: t.shape, data });
  }
  return { name, config: meta.config, batch: meta.batch, tensors, onnx: meta.onnx };
}

/** The fixture's `param.` tensors keyed by torchvision name. */
export function swinFixtureWeights(fx: SwinFixture): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [k, t] of fx.tensors) if (k.startsWith('param.')) out.set(k.slice('param.'.length), t.data);
  return out;
}
