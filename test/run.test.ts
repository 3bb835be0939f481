// `run()` end to end on a tiny model: every stage runs, every output is written, the
// exported model agrees with our simulation of its quantizers in onnxruntime; and bad input
// gives a clear error that keeps what was already computed.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildVitOnnx } from '../lib/onnx/build-vit';
import { randomVitWeights } from '../lib/vit';
import { completeVitConfig, VitConfigInput } from '../lib/vit-config';
import { writeEvalSubset } from '../lib/data/eval-subset';
import { run } from '../lib/run/run';
import { rng } from './helpers/random';
import { nativeAddon } from '../lib/native';

const CFG: VitConfigInput = { imageSize: 16, channels: 1, patchSize: 4, embedDim: 32, depth: 2, numHeads: 2, mlpDim: 64, numClasses: 4 };

function fixture(): { dir: string; model: string; evalDir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spdfq-run-'));
  const config = completeVitConfig(CFG);
  const w = randomVitWeights(config, 3);
  // Larger weights than timm's init so the classes actually differ.
  for (const [k, v] of w) if (!/norm\d?\.weight$/.test(k)) v.forEach((x, i) => (v[i] = x * 20));
  const model = path.join(dir, 'tiny.onnx');
  fs.writeFileSync(model, buildVitOnnx(config, w, { opset: 17 }));
  fs.writeFileSync(path.join(dir, 'tiny.preprocess.json'), JSON.stringify({ mean: [0.5], std: [0.25], cropPct: 1 }));
  const r = rng(1);
  const count = 40;
  const images = new Float32Array(count * 16 * 16).map(() => (r() - 0.5) / 0.25);
  const labels = Int32Array.from({ length: count }, (_, i) => i % 4);
  const evalDir = path.join(dir, 'eval');
  writeEvalSubset(evalDir, { images, labels, count, channels: 1, height: 16, width: 16 }, { name: 'random', mean: 0.5, std: 0.25, licence: 'test data', source: 'generated' }, count);
  return { dir, model, evalDir };
}

test('every stage runs and writes its outputs; onnxruntime agrees with the simulation of the export', async () => {
  const f = fixture();
  const out = path.join(f.dir, 'out');
  const res = await run({ model: f.model, eval: f.evalDir, out, iters: 10, images: 8, reconstruction: { iters: 10 }, threads: 2, bits: 'w4a4' });
  for (const k of ['method', 'bits', 'fp_top1', 'quant_top1', 'exported_top1', 'seconds'] as const) expect(res[k]).not.toBeNull();
  expect(res.method).toBe('spdfq');
  expect(res.eval_images).toBe(40);
  expect(res.exported_agreement).toBeGreaterThanOrEqual(0.99);
  const saved = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
  expect(saved.quant_top1).toBe(res.quant_top1);
  for (const file of ['quantized.onnx', 'report.html', 'synthetic/grid.png', 'synthetic/images.npy']) expect(fs.existsSync(path.join(out, file))).toBe(true);
  const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
  expect(html).toContain('Attention maps beside their priors');
  expect(html).toContain('data:image/png;base64');
});

test('the MatMulNBits export runs in onnxruntime with the accuracy of its simulation', async () => {
  const f = fixture();
  const res = await run({ model: f.model, eval: f.evalDir, out: path.join(f.dir, 'nbits'), method: 'noise', images: 8, reconstruction: { iters: 0 }, threads: 2, bits: 'w4a4', exportFormat: 'matmulnbits' });
  expect(res.exported_agreement).toBeGreaterThanOrEqual(0.99);
  expect(Math.abs((res.exported_top1 as number) - (res.exported_sim_top1 as number))).toBeLessThanOrEqual(0.005);
});

test('a missing model, a bad option and an unreadable eval folder are clear errors', async () => {
  const f = fixture();
  await expect(run({ model: path.join(f.dir, 'nope.onnx'), out: path.join(f.dir, 'o1') })).rejects.toMatchObject({ code: 'E_IO' });
  await expect(run({ model: f.model, bits: 'w5a5' as never, out: path.join(f.dir, 'o2') })).rejects.toThrow(/bits: expected one of/);
  await expect(run({ model: f.model, exportFormat: 'int3' as never, out: path.join(f.dir, 'o2') })).rejects.toThrow(/exportFormat: expected one of qdq, qdq-int4, matmulnbits, received 'int3'/);
  const bad = path.join(f.dir, 'badeval');
  fs.mkdirSync(path.join(bad, 'cat'), { recursive: true });
  fs.writeFileSync(path.join(bad, 'cat', 'x.png'), 'not a png');
  await expect(run({ model: f.model, eval: bad, out: path.join(f.dir, 'o3'), iters: 2 })).rejects.toThrow(/x\.png/);
});

test('cancelling keeps what was reached: results.json says how far the run got', async () => {
  const f = fixture();
  const out = path.join(f.dir, 'out');
  const ac = new AbortController();
  const p = run({ model: f.model, eval: f.evalDir, out, iters: 400, images: 8, threads: 1, signal: ac.signal });
  setTimeout(() => ac.abort(), 300);
  await expect(p).rejects.toMatchObject({ code: 'E_CANCELLED' });
  const saved = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
  expect(saved.quant_top1).toBeNull();
  expect(saved.eval_images).toBe(40);
  // The images reached before the stop were written.
  expect(fs.existsSync(path.join(out, 'synthetic', 'images.npy'))).toBe(true);
});

test('--device cuda without a usable GPU (or in a CPU-only build) is a clear error, not a silent CPU run', async () => {
  const f = fixture();
  const addon = nativeAddon();
  const cudaBuild = addon.backends().includes('cuda');
  const gpu = cudaBuild && addon.cudaDevices().count > 0;
  // (On a machine with a GPU, `run --device cuda` runs: nothing to refuse there.)
  if (!gpu) {
    const expected = cudaBuild ? /supports cpu and cuda, but no CUDA device was found/ : /supports cpu only/;
    await expect(run({ model: f.model, device: 'cuda:0', out: path.join(f.dir, 'o4') })).rejects.toThrow(expected);
  }
  await expect(run({ model: f.model, device: 'gpu', out: path.join(f.dir, 'o5') })).rejects.toThrow(/device: expected 'cpu' or 'cuda\[:N\]', received 'gpu'/);
});
