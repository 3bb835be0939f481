// A quantized model on disk, so that a resumed run skips calibration and reconstruction:
// quantized.json (architecture, plan, quantizers, report) and quantized-weights.bin (the
// full-precision weights behind the quantizers, after reparameterization and
// reconstruction, float32 in parameter order). Loading rebuilds exactly the same model.

import * as fs from 'fs';
import * as path from 'path';
import { SpdfqError } from '../errors';
import { createVit } from '../vit';
import { VitConfig, vitParamSpecs } from '../vit-config';
import { SiteQuantizer, WeightQuantizer } from '../native';
import { QuantizationReport, QuantizedVit } from './quantize';
import { QuantPlan } from './quant-config';

const FORMAT = 'spdfq-native quantized model 1';

interface StateJson {
  format: string;
  config: VitConfig;
  plan: QuantPlan;
  sites: SiteQuantizer[];
  weightQuantizers: (Omit<WeightQuantizer, 'scales' | 'zeros'> & { scales: number[]; zeros: number[] })[];
  report: QuantizationReport;
}

/** The two files' contents: write them with the caller's writer (atomic). */
export function serializeQuantized(q: QuantizedVit): { json: string; weights: Uint8Array } {
  const weights = q.getWeights();
  const specs = vitParamSpecs(q.config);
  const total = specs.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
  const flat = new Float32Array(total);
  let off = 0;
  for (const p of specs) {
    const w = weights.get(p.name)!;
    flat.set(w, off);
    off += w.length;
  }
  const state: StateJson = {
    format: FORMAT,
    config: q.config,
    plan: q.plan,
    sites: q.sites,
    weightQuantizers: q.weightQuantizers.map((w) => ({ ...w, scales: Array.from(w.scales), zeros: Array.from(w.zeros) })),
    report: q.report,
  };
  return { json: `${JSON.stringify(state)}\n`, weights: new Uint8Array(flat.buffer) };
}

export async function loadQuantized(dir: string, threads?: number): Promise<QuantizedVit> {
  const jsonPath = path.join(dir, 'quantized.json');
  const binPath = path.join(dir, 'quantized-weights.bin');
  let state: StateJson;
  try {
    state = JSON.parse(fs.readFileSync(jsonPath, 'utf8')) as StateJson;
  } catch (err) {
    throw new SpdfqError('E_IO', `cannot read the saved quantized model ${jsonPath}: ${(err as Error).message}`);
  }
  if (state.format !== FORMAT) throw new SpdfqError('E_IO', `${jsonPath}: expected format '${FORMAT}', found ${JSON.stringify(state.format)}`);
  const bytes = fs.readFileSync(binPath);
  const specs = vitParamSpecs(state.config);
  const total = specs.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
  if (bytes.length !== total * 4) throw new SpdfqError('E_IO', `${binPath}: expected ${total * 4} bytes of weights, found ${bytes.length}`);
  const flat = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  const weights = new Map<string, Float32Array>();
  let off = 0;
  for (const p of specs) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    weights.set(p.name, flat.subarray(off, off + n));
    off += n;
  }
  const model = await createVit(state.config, weights, { threads });
  const weightQuantizers: WeightQuantizer[] = state.weightQuantizers.map((w) => ({ ...w, scales: Float32Array.from(w.scales), zeros: Float32Array.from(w.zeros) }));
  await model.exclusive(async () => {
    const native = model.nativeHandle();
    native.setActQuant(state.sites);
    native.setWeightQuant(weightQuantizers);
  });
  return new QuantizedVit(model, state.plan, state.sites, weightQuantizers, state.report);
}
