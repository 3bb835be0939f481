// `run({ device: 'cuda' })` end to end on the bundled model with a tiny budget: synthesis
// on the GPU copy of the model, calibration and reconstruction on the CPU engine, and the
// exported ONNX in onnxruntime agreeing with our simulation of it — the same bars as
// test/run.test.ts on the CPU. Not part of `npm test`: `npm run test:gpu` runs it.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { nativeAddon } from '../../lib/native';
import { run } from '../../lib/run/run';
import type { VitDevice } from '../../lib/vit';

const DEVICE = (process.env.SPDFQ_TEST_DEVICE ?? 'cuda:0') as VitDevice;

beforeAll(() => {
  const info = nativeAddon().cudaDevices();
  if (info.count === 0) throw new Error(`no usable CUDA device: ${info.reason}`);
});

test('run --device cuda synthesizes on the GPU and exports a model onnxruntime agrees with', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'spdfq-run-gpu-'));
  const res = await run({ device: DEVICE, out, iters: 20, images: 8, reconstruction: { iters: 20 }, evalLimit: 200, bits: 'w8a8' });
  expect(res.synthetic_images).toBe(8);
  expect(res.fp_top1).toBeGreaterThan(0.5); // the bundled model: 85–88 % on its test subset
  expect(res.exported_agreement).toBeGreaterThanOrEqual(0.99);
  for (const file of ['quantized.onnx', 'report.html', 'synthetic/images.npy']) expect(fs.existsSync(path.join(out, file))).toBe(true);
});
