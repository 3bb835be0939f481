// A trained model's weights as two files beside its card: <stem>.weights.json (format,
// family, config, and each tensor's name, shape and offset in floats) and
// <stem>.weights.bin (float32 little-endian, the tensors back to back in that order).
// For models whose ONNX writer is not in this build yet (the Swin): the weights
// createSwin / buildSwinOnnx take, by name, without the training checkpoint's optimizer state.

import * as fs from 'fs';
import { SpdfqError } from '../errors';
import { NamedShape } from '../random-weights';

const FORMAT = 'spdfq-native weights 1';

export interface WeightFileMeta {
  family: string;
  config: unknown;
}

/** Writes both files; returns their paths. */
export function saveWeightFile(stem: string, meta: WeightFileMeta, specs: readonly NamedShape[], weights: Map<string, Float32Array>): string[] {
  let offset = 0;
  const tensors = specs.map((s) => {
    const w = weights.get(s.name);
    const n = s.shape.reduce((a, b) => a * b, 1);
    if (!w || w.length !== n) throw new SpdfqError('E_TENSOR', `weight '${s.name}': expected ${n} floats, received ${w ? w.length : 'none'}`);
    const t = { name: s.name, shape: [...s.shape], offset };
    offset += n;
    return t;
  });
  const bin = Buffer.concat(specs.map((s) => {
    const w = weights.get(s.name)!;
    return Buffer.from(w.buffer, w.byteOffset, w.byteLength);
  }));
  const files = [`${stem}.weights.bin`, `${stem}.weights.json`];
  fs.writeFileSync(files[0], bin);
  fs.writeFileSync(files[1], `${JSON.stringify({ format: FORMAT, ...meta, floats: offset, tensors }, null, 1)}\n`);
  return files;
}

/** Reads what saveWeightFile wrote: the meta and the weights by name. */
export function loadWeightFile(stem: string): { meta: WeightFileMeta; weights: Map<string, Float32Array> } {
  const json = JSON.parse(fs.readFileSync(`${stem}.weights.json`, 'utf8')) as WeightFileMeta & { format?: string; floats: number; tensors: { name: string; shape: number[]; offset: number }[] };
  if (json.format !== FORMAT) throw new SpdfqError('E_IO', `${stem}.weights.json: expected format '${FORMAT}', found ${JSON.stringify(json.format)}`);
  const bin = fs.readFileSync(`${stem}.weights.bin`);
  if (bin.length !== json.floats * 4) throw new SpdfqError('E_IO', `${stem}.weights.bin: expected ${json.floats * 4} bytes, found ${bin.length}`);
  const all = new Float32Array(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.length));
  const weights = new Map(json.tensors.map((t) => [t.name, all.slice(t.offset, t.offset + t.shape.reduce((a, b) => a * b, 1))]));
  return { meta: { family: json.family, config: json.config }, weights };
}
