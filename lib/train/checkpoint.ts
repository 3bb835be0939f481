// A training checkpoint: everything trainVit needs to continue a run exactly where it
// stopped (weights, AdamW moments, step counter, shuffle order and random-stream state,
// per-epoch history). Written after every epoch to a folder, atomically (temporary names,
// then rename), so an interrupted or killed run resumes from its last finished epoch.

import * as fs from 'fs';
import * as path from 'path';
import { SpdfqError } from '../errors';

export interface EpochRecord {
  epoch: number;
  loss: number;
  testTop1?: number;
  seconds: number;
}

export interface TrainState {
  /** Epochs finished. */
  epoch: number;
  /** Optimizer steps taken. */
  step: number;
  /** State of the trainer's random stream after the last finished epoch. */
  rngState: number;
  /** The shuffle order after the last finished epoch (each epoch shuffles it in place). */
  order: Int32Array;
  params: Float32Array;
  adamM: Float32Array;
  adamV: Float32Array;
  history: EpochRecord[];
}

const META = 'checkpoint.json';
const DATA = 'checkpoint.bin';

/** Writes `state` and `meta` (the run's recipe, checked on resume) to `dir`. */
export function saveCheckpoint(dir: string, state: TrainState, meta: Record<string, unknown>): void {
  fs.mkdirSync(dir, { recursive: true });
  const arrays = [state.params, state.adamM, state.adamV, state.order];
  const bin = Buffer.concat(arrays.map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength)));
  const json = {
    format: 'spdfq-native training checkpoint 1',
    epoch: state.epoch,
    step: state.step,
    rngState: state.rngState,
    paramCount: state.params.length,
    orderLength: state.order.length,
    history: state.history,
    meta,
  };
  // Data first, then the metadata that refers to it: a crash between the two renames
  // leaves the previous metadata, whose sizes reject the new data rather than misread it.
  fs.writeFileSync(path.join(dir, `${DATA}.tmp`), bin);
  fs.renameSync(path.join(dir, `${DATA}.tmp`), path.join(dir, DATA));
  fs.writeFileSync(path.join(dir, `${META}.tmp`), `${JSON.stringify(json, null, 1)}\n`);
  fs.renameSync(path.join(dir, `${META}.tmp`), path.join(dir, META));
}

/** Reads a checkpoint from `dir`, or null when there is none. `meta` is returned as saved. */
export function loadCheckpoint(dir: string): { state: TrainState; meta: Record<string, unknown> } | null {
  const metaPath = path.join(dir, META);
  if (!fs.existsSync(metaPath)) return null;
  let json: { format?: string; epoch: number; step: number; rngState: number; paramCount: number; orderLength: number; history: EpochRecord[]; meta: Record<string, unknown> };
  try {
    json = JSON.parse(fs.readFileSync(metaPath, 'utf8'));
  } catch (err) {
    throw new SpdfqError('E_IO', `${metaPath}: not a readable checkpoint (${(err as Error).message})`);
  }
  if (json.format !== 'spdfq-native training checkpoint 1') throw new SpdfqError('E_IO', `${metaPath}: expected format 'spdfq-native training checkpoint 1', found ${JSON.stringify(json.format)}`);
  const bin = fs.readFileSync(path.join(dir, DATA));
  const P = json.paramCount;
  const expected = (3 * P + json.orderLength) * 4;
  if (bin.length !== expected) throw new SpdfqError('E_IO', `${path.join(dir, DATA)}: expected ${expected} bytes for ${P} parameters, found ${bin.length}`);
  const floats = new Float32Array(bin.buffer.slice(bin.byteOffset, bin.byteOffset + 3 * P * 4));
  const order = new Int32Array(bin.buffer.slice(bin.byteOffset + 3 * P * 4, bin.byteOffset + bin.length));
  return {
    state: {
      epoch: json.epoch,
      step: json.step,
      rngState: json.rngState,
      order,
      params: floats.slice(0, P),
      adamM: floats.slice(P, 2 * P),
      adamV: floats.slice(2 * P, 3 * P),
      history: json.history,
    },
    meta: json.meta,
  };
}
