// A quantized model on disk, so that a resumed run skips calibration and reconstruction:
// quantized.json (architecture, plan, quantizers, report) and quantized-weights.bin (the
// full-precision weights behind the quantizers, after reparameterization and
// reconstruction, float32 in parameter order). Loading rebuilds exactly the same model.
// A Swin's state (kind 'swin') lists its weights by name and length in the JSON: its
// parameter set depends on the reparameterization (added biases), not on the config alone.

import * as fs from 'fs';
import * as path from 'path';
import { SpdfqError } from '../errors';
import { createVit } from '../vit';
import { VitConfig, vitParamSpecs } from '../vit-config';
import { SiteQuantizer, WeightQuantizer } from '../native';
import { QuantizationReport, QuantizedVit } from './quantize';
import { QuantizedSwin } from './quantize-swin';
import { createSwin, SwinConfig } from '../swin';
import { QuantPlan } from './quant-config';

const FORMAT = 'spdfq-native quantized model 1';

type StateJson = {
  format: string;
  plan: QuantPlan;
  sites: SiteQuantizer[];
  weightQuantizers: (Omit<WeightQuantizer, 'scales' | 'zeros'> & { scales: number[]; zeros: number[] })[];
} & ({ kind?: undefined; config: VitConfig; report: QuantizationReport } | { kind: 'swin'; config: SwinConfig; report: QuantizedSwin['report']; weightNames: [string, number][] });

/** Parameter names and lengths, in the order the weights file holds them. */
function layout(state: StateJson): [string, number][] {
  if (state.kind === 'swin') return state.weightNames;
  return vitParamSpecs(state.config).map((p) => [p.name, p.shape.reduce((a, b) => a * b, 1)]);
}

/** The two files' contents: write them with the caller's writer (atomic). */
export function serializeQuantized(q: QuantizedVit | QuantizedSwin): { json: string; weights: Uint8Array } {
  const weights = q.getWeights();
  const common = {
    format: FORMAT,
    plan: q.plan,
    sites: q.sites,
    weightQuantizers: q.weightQuantizers.map((w) => ({ ...w, scales: Array.from(w.scales), zeros: Array.from(w.zeros) })),
  };
  const state: StateJson = q instanceof QuantizedSwin
    ? { ...common, kind: 'swin', config: q.config, report: q.report, weightNames: Array.from(weights, ([name, w]): [string, number] => [name, w.length]) }
    : { ...common, config: q.config, report: q.report };
  const names = layout(state);
  const flat = new Float32Array(names.reduce((s, [, n]) => s + n, 0));
  let off = 0;
  for (const [name] of names) {
    const w = weights.get(name)!;
    flat.set(w, off);
    off += w.length;
  }
  return { json: `${JSON.stringify(state)}\n`, weights: new Uint8Array(flat.buffer) };
}

export async function loadQuantized(dir: string, threads?: number): Promise<QuantizedVit | QuantizedSwin> {
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
  const names = layout(state);
  const total = names.reduce((s, [, n]) => s + n, 0);
  if (bytes.length !== total * 4) throw new SpdfqError('E_IO', `${binPath}: expected ${total * 4} bytes of weights, found ${bytes.length}`);
  const flat = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  const weights = new Map<string, Float32Array>();
  let off = 0;
  for (const [name, n] of names) {
    weights.set(name, flat.subarray(off, off + n));
    off += n;
  }
  const weightQuantizers: WeightQuantizer[] = state.weightQuantizers.map((w) => ({ ...w, scales: Float32Array.from(w.scales), zeros: Float32Array.from(w.zeros) }));
  const install = (native: { setActQuant(s: SiteQuantizer[]): void; setWeightQuant(w: WeightQuantizer[]): void }) => {
    native.setActQuant(state.sites);
    native.setWeightQuant(weightQuantizers);
  };
  if (state.kind === 'swin') {
    const swin = createSwin(state.config, weights, { threads });
    await swin.exclusive(async () => install(swin.nativeHandle()));
    return new QuantizedSwin(swin, state.plan, state.sites, weightQuantizers, weights, state.report);
  }
  const model = await createVit(state.config, weights, { threads });
  await model.exclusive(async () => install(model.nativeHandle()));
  return new QuantizedVit(model, state.plan, state.sites, weightQuantizers, state.report);
}
