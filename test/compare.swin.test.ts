// `compare` on a Swin (docs/swin.md, "Stage: compare"): a random-weight 32×32 RGB, 10-class
// Swin, 2 methods × 1 bit width × 1 seed and one ablation variant, on the bundled CIFAR-10
// subset (evaluation: its first images; "real": a disjoint slice of it). The table's cells
// equal this test's own quantization and evaluation through the API, the image statistics
// are on the Swin's pooled head input (recomputed here), the class-token attention entropy
// is absent (null, '—'), the record names the reconstruction that ran (and, with
// --recon-iters 0, says it was off, as every Swin record made before Swin reconstruction
// existed), the two never merge, shards merge into the unsharded table, and synthesis off
// the CPU is refused.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { cli } from './helpers/cli';
import { SWIN_CONFIG, SWIN_EVAL, writeRandomSwin } from './helpers/random-swin';
import { loadEvalSet } from '../lib/data/eval-set';
import { writeEvalSubset } from '../lib/data/eval-subset';
import { readPreprocessing } from '../lib/onnx/preprocess';
import { loadSwinOnnx } from '../lib/onnx/import-swin';
import { quantize } from '../lib/quant/quantize';
import { normalizedPixelRange } from '../lib/quant/quant-config';
import { evaluate } from '../lib/eval/evaluate';
import { synthesize } from '../lib/synth/synthesize';
import { frechetDistance } from '../lib/compare/feature-stats';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'spdfq-compare-swin-'));
const model = writeRandomSwin(root);
const pre = readPreprocessing(model, SWIN_CONFIG);
const EVAL_LIMIT = 32;
const IMAGES = 4;
const real = path.join(root, 'real');
// Real calibration images: a slice of the subset the evaluation (its first 32) never sees.
writeEvalSubset(real, loadEvalSet(SWIN_EVAL, SWIN_CONFIG, pre), { name: 'cifar10 slice', mean: pre.mean, std: pre.std, licence: 'as models/cifar10-vit-test', source: 'models/cifar10-vit-test' }, 32,
  Array.from({ length: 32 }, (_, i) => 500 + i));
const tableOf = (methods: string, ablation: string[]) => ['compare', '--model', model, '--eval', SWIN_EVAL, '--eval-limit', String(EVAL_LIMIT), '--real', real,
  '--methods', methods, '--bits', 'w4a4', '--seeds', '1', '--images', String(IMAGES), '--iters', '2', ...ablation, '--threads', '1'];
const RECON_ITERS = 5;
const table = [...tableOf('spdfq,real', ['--ablation-variants', 'APA']), '--recon-iters', String(RECON_ITERS)];
const json = (p: string) => JSON.parse(fs.readFileSync(path.join(p, 'results.json'), 'utf8'));
const out = path.join(root, 'table');

/** Top-1 of `images` quantized at W4A4 through the API, reconstructed as the table's cells
 *  (RECON_ITERS iterations, the seed's stream) or not at all. */
async function apiTop1(images: Float32Array, reconstruction: { iters: number; seed: number } | false): Promise<number> {
  const { model: fp } = await loadSwinOnnx(model, { threads: 1 });
  const evalSet = loadEvalSet(SWIN_EVAL, SWIN_CONFIG, pre, { limit: EVAL_LIMIT });
  const q = await quantize(fp, images, IMAGES, { bits: 'w4a4', inputRange: normalizedPixelRange(pre), reconstruction, threads: 1 });
  try {
    return (await evaluate((x, b) => q.forward(x, b), evalSet, SWIN_CONFIG.numClasses)).top1;
  } finally {
    await q.dispose();
    await fp.dispose();
  }
}

describe('compare on a Swin', () => {
  let record: { options: Record<string, unknown>; result: Record<string, any> };
  beforeAll(async () => {
    const r = await cli([...table, '--out', out]);
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.code).toBe(0);
    record = json(out);
  });

  test('the record: a Swin, the reconstruction that ran and its back-end settings named', () => {
    expect(record.options.architecture).toBe('swin');
    expect(record.options.reconstruction).toEqual({ iters: RECON_ITERS });
    expect(record.options.quant).toEqual({ calibration: 'sequential', reconstruction: { embed: true, head: true, learnSteps: true } });
    const md = fs.readFileSync(path.join(out, 'results.md'), 'utf8');
    expect(md).toMatch(/^Swin: no class-token attention entropy/);
    expect(md).not.toMatch(/without block reconstruction/);
  });

  test('cells equal quantizing the same images through the API', async () => {
    // The real row at seed 0 calibrates on the first --images real images.
    const realSet = loadEvalSet(real, SWIN_CONFIG, pre, { limit: IMAGES });
    expect(record.result.cells.real.w4a4).toEqual([await apiTop1(realSet.images, { iters: RECON_ITERS, seed: 0 })]);
    // The SPDFQ row: the same synthesis (method defaults, 2 iterations, seed 0), then the same.
    const { model: fp } = await loadSwinOnnx(model, { threads: 1 });
    const synth = await synthesize(fp, { method: 'spdfq', images: IMAGES, iters: 2, seed: 0, preprocess: { mean: pre.mean, std: pre.std } });
    await fp.dispose();
    expect(record.result.cells.spdfq.w4a4).toEqual([await apiTop1(synth.images, { iters: RECON_ITERS, seed: 0 })]);
    expect(record.result.ablation.APA).toHaveLength(1);
  }, 120_000);

  test('image statistics: on the pooled head input; the class-token entropy absent', async () => {
    for (const m of ['spdfq', 'real']) {
      const [q] = record.result.quality[m];
      expect(q.clsAttentionEntropy).toBeNull();
      for (const k of ['featureCosine', 'frechet', 'rangeError']) expect(Number.isFinite(q[k])).toBe(true);
    }
    expect(record.result.realQualityReference.clsAttentionEntropy).toBeNull();
    // The real row's Fréchet distance from this test's own features (SwinModel's 'pooled').
    const { model: fp } = await loadSwinOnnx(model, { threads: 1 });
    const pooled = async (x: Float32Array, n: number) => {
      await fp.forward(x, n);
      return (await fp.output('pooled')).data.slice();
    };
    const evalSet = loadEvalSet(SWIN_EVAL, SWIN_CONFIG, pre, { limit: EVAL_LIMIT });
    const realSet = loadEvalSet(real, SWIN_CONFIG, pre, { limit: IMAGES });
    const D = SWIN_CONFIG.embedDim * 2;
    const expected = frechetDistance(await pooled(realSet.images, IMAGES), IMAGES, await pooled(evalSet.images, EVAL_LIMIT), EVAL_LIMIT, D);
    await fp.dispose();
    expect(record.result.quality.real[0].frechet).toBeCloseTo(expected, 6);
    // The Markdown's entropy column and reference say '—', not a number.
    const md = fs.readFileSync(path.join(out, 'results.md'), 'utf8');
    expect(md).toMatch(/class-token attention entropy — nats/);
    expect(md).toMatch(/\| SPDFQ \| -?\d+\.\d{3} \| \d+\.\d{2} \| — \| \d+\.\d{3} \|/);
  }, 60_000);

  test('--shard 0/2 and 1/2, merged, equal the unsharded table', async () => {
    const sharded = path.join(root, 'sharded');
    for (const s of ['0/2', '1/2']) expect((await cli([...table, '--shard', s, '--out', sharded])).code).toBe(0);
    const merged = path.join(root, 'merged');
    const r = await cli(['compare', '--merge', path.join(sharded, 'shards', '0-of-2'), path.join(sharded, 'shards', '1-of-2'), '--out', merged]);
    expect(r.code).toBe(0);
    const m = json(merged);
    const { seconds: _a, ...mergedResult } = m.result;
    const { seconds: _b, ...whole } = record.result;
    expect(mergedResult).toEqual(whole);
    expect(m.options.architecture).toBe('swin');
    expect(fs.readFileSync(path.join(merged, 'results.md'), 'utf8')).toMatch(/^Swin: /);
  }, 120_000);

  test('--recon-iters 0: the record says reconstruction was off and names no settings, as every earlier Swin record; it never merges with a reconstructed one', async () => {
    const zero = path.join(root, 'zero');
    const r = await cli([...tableOf('real', ['--no-ablation']), '--recon-iters', '0', '--out', zero]);
    expect(r.stderr).not.toMatch(/spdfq-native:/);
    const z = json(zero);
    expect(z.options.reconstruction).toBe(false);
    expect(z.options.quant).toEqual({ calibration: 'sequential' });
    expect(fs.readFileSync(path.join(zero, 'results.md'), 'utf8')).toMatch(/^Swin: quantized without block reconstruction/);
    // Its cell is the API's without reconstruction.
    const realSet = loadEvalSet(real, SWIN_CONFIG, pre, { limit: IMAGES });
    expect(z.result.cells.real.w4a4).toEqual([await apiTop1(realSet.images, false)]);
    const bad = await cli(['compare', '--merge', out, zero, '--out', path.join(root, 'bad-merge')]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/option reconstruction is/);
  }, 120_000);

  test('synthesis off the CPU is refused before any work', async () => {
    const r = await cli([...table, '--device', 'cuda', '--out', path.join(root, 'refused')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--device: a Swin runs on the CPU only/);
    expect(fs.existsSync(path.join(root, 'refused', 'results.json'))).toBe(false);
  });
});
