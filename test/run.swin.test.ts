// `run()` end to end on a Swin (docs/swin.md, "Stage: run"): a random-weight 32×32 RGB,
// 10-class Swin written by buildSwinOnnx, evaluated on the bundled CIFAR-10 subset. The
// exported top-1 in results.json is checked against this test's own onnxruntime session on
// the written quantized.onnx; block reconstruction runs (every block and patch merging, the
// embedding and the head) and its table is in the report; a resumed run reuses both
// stages, and a quantized state saved before Swin reconstruction existed is not reused for
// a run that reconstructs; the MatMulNBits export (run and CLI) runs in onnxruntime with the
// ViT's agreement bar; and the options a Swin cannot take are refused before any work.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import * as onnx from 'onnx-proto';
import { loadEvalSet } from '../lib/data/eval-set';
import { readPreprocessing } from '../lib/onnx/preprocess';
import { run } from '../lib/run/run';
import { cli } from './helpers/cli';
import { SWIN_CONFIG as CONFIG, SWIN_EVAL as EVAL, writeRandomSwin } from './helpers/random-swin';

const EVAL_LIMIT = 48;

function fixture(): { dir: string; model: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spdfq-run-swin-'));
  const model = writeRandomSwin(dir);
  return { dir, model };
}

/** Top-1 of an ONNX file on the evaluation set, by onnxruntime in this test. */
async function ortTop1(file: string, modelPath: string): Promise<number> {
  const set = loadEvalSet(EVAL, CONFIG, readPreprocessing(modelPath, CONFIG), { limit: EVAL_LIMIT });
  const session = await ort.InferenceSession.create(file, { intraOpNumThreads: 1, graphOptimizationLevel: 'all', extra: { session: { qdq_matmulnbits_accuracy_level: '0' } } } as ort.InferenceSession.SessionOptions);
  try {
    const per = CONFIG.channels * CONFIG.imageHeight * CONFIG.imageWidth;
    const x = set.images.subarray(0, set.count * per);
    const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, [set.count, CONFIG.channels, CONFIG.imageHeight, CONFIG.imageWidth]) });
    const logits = out[session.outputNames[0]].data as Float32Array;
    let correct = 0;
    for (let r = 0; r < set.count; r++) {
      let best = 0;
      for (let j = 1; j < 10; j++) if (logits[r * 10 + j] > logits[r * 10 + best]) best = j;
      if (best === set.labels[r]) correct++;
    }
    return correct / set.count;
  } finally {
    await session.release();
  }
}

const f = fixture();
const out = path.join(f.dir, 'out');
const options = { model: f.model, eval: EVAL, evalLimit: EVAL_LIMIT, out, iters: 4, images: 4, threads: 2, bits: 'w4a4' as const, reconstruction: { iters: 20 } };
const STAGES = ['features.0', 'features.1.0', 'features.1.1', 'features.2', 'features.3.0', 'features.3.1', 'head'];

test('run on a Swin: every stage, reconstruction included, the exported top-1 equal to onnxruntime on the written file', async () => {
  const res = await run(options);
  expect(res.status).toBe('done');
  expect(res.architecture).toBe('swin');
  expect(res.eval_images).toBe(EVAL_LIMIT);
  for (const k of ['fp_top1', 'quant_top1', 'exported_top1', 'exported_agreement'] as const) expect(res[k]).not.toBeNull();
  expect(res.notes.join('\n')).not.toMatch(/reconstruction/);
  const state = JSON.parse(fs.readFileSync(path.join(out, 'state', 'quantized.json'), 'utf8'));
  expect(state.plan.reconstruction).toMatchObject({ iters: 20, embed: true, head: true, learnSteps: true });
  expect(state.report.reconstruction.map((r: { stage: string }) => r.stage)).toEqual(STAGES);
  expect(new Set(res.notes).size).toBe(res.notes.length);
  const saved = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
  expect(saved.exported_top1).toBe(res.exported_top1);
  expect(saved.notes).toEqual(res.notes);
  // The independent check: this test's onnxruntime session on the file run wrote.
  expect(await ortTop1(path.join(out, 'quantized.onnx'), f.model)).toBe(saved.exported_top1);
  expect(res.exported_agreement).toBeGreaterThanOrEqual(0.95);
  const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
  expect(html).toContain('attention maps beside their priors are drawn for ViTs only');
  expect(html).toContain('output MSE before reconstruction');
  for (const stage of STAGES) expect(html).toContain(`<td>${stage}</td>`);
  for (const file of ['synthetic/grid.png', 'synthetic/images.npy', 'state/quantized.json']) expect(fs.existsSync(path.join(out, file))).toBe(true);

  // --resume: both stages reused, the same quantized model (same results).
  const again = await run({ ...options, resume: true });
  expect(again.resumed).toEqual(['synthesize', 'quantize']);
  for (const k of ['fp_top1', 'quant_top1', 'exported_top1', 'exported_agreement'] as const) expect(again[k]).toBe(res[k]);
  expect(again.notes).toEqual(res.notes);

  // A state saved before Swin reconstruction existed (its report has no reconstruction)
  // is quantized again, not reused, by a run that reconstructs.
  const file = path.join(out, 'state', 'quantized.json');
  const { reconstruction: _r, ...oldReport } = state.report;
  fs.writeFileSync(file, JSON.stringify({ ...state, plan: { ...state.plan, reconstruction: null }, report: oldReport }));
  const third = await run({ ...options, resume: true });
  expect(third.resumed).toEqual(['synthesize']);
  expect(JSON.parse(fs.readFileSync(file, 'utf8')).report.reconstruction.map((r: { stage: string }) => r.stage)).toEqual(STAGES);
  expect(third.exported_top1).toBe(res.exported_top1);
});

test('run --export-format matmulnbits on a Swin: onnxruntime on the written MatMulNBits file agrees with the simulation', async () => {
  const dir = path.join(f.dir, 'nbits');
  const res = await run({ ...options, out: dir, exportFormat: 'matmulnbits' });
  expect(res.status).toBe('done');
  const saved = JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8'));
  // The independent check on the file itself: every Linear is a MatMulNBits node, and this
  // test's onnxruntime session gives run's exported top-1.
  const file = path.join(dir, 'quantized.onnx');
  const m = onnx.onnx.ModelProto.decode(fs.readFileSync(file));
  const blocks = CONFIG.depths.reduce((a, b) => a + b, 0);
  expect(m.graph!.node!.filter((nd) => nd.opType === 'MatMulNBits' && nd.domain === 'com.microsoft').length).toBe(4 * blocks + (CONFIG.depths.length - 1) + 1);
  expect(m.graph!.node!.filter((nd) => nd.opType === 'Gemm').length).toBe(0);
  expect(await ortTop1(file, f.model)).toBe(saved.exported_top1);
  // The ViT's MatMulNBits run test's bar (test/run.test.ts).
  expect(res.exported_agreement).toBeGreaterThanOrEqual(0.99);
  expect(Math.abs((res.exported_top1 as number) - (res.exported_sim_top1 as number))).toBeLessThanOrEqual(0.005);
});

describe('what run refuses for a Swin, before any work', () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['an unknown export format', { exportFormat: 'nbits' }, /exportFormat: expected one of qdq, qdq-int4, matmulnbits, received 'nbits'/],
  ];
  test.each(cases)('%s', async (_what, extra, message) => {
    const dir = path.join(f.dir, `refused-${Object.keys(extra)[0]}`);
    await expect(run({ ...options, out: dir, ...extra })).rejects.toMatchObject({ code: 'E_CONFIG', message: expect.stringMatching(message) });
    expect(fs.existsSync(path.join(dir, 'results.json'))).toBe(false);
  });
});

describe('the CLI on a Swin', () => {
  const flags = ['--model', f.model, '--eval', EVAL, '--eval-limit', '16', '--iters', '2', '--images', '2', '--threads', '2'];

  test.each([['qdq-int4'], ['matmulnbits']])('run --format %s --recon-iters 3 completes, reconstructed', async (format) => {
    const dir = path.join(f.dir, `cli-${format}`);
    const r = await cli(['run', ...flags, '--out', dir, '--format', format, '--recon-iters', '3']);
    expect(r.code).toBe(0);
    const saved = JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8'));
    expect(saved.status).toBe('done');
    expect(saved.exported_top1).not.toBeNull();
    const m = onnx.onnx.ModelProto.decode(fs.readFileSync(path.join(dir, 'quantized.onnx')));
    expect(m.graph!.node!.some((nd) => nd.opType === 'MatMulNBits')).toBe(format === 'matmulnbits');
    const state = JSON.parse(fs.readFileSync(path.join(dir, 'state', 'quantized.json'), 'utf8'));
    expect(state.plan.reconstruction.iters).toBe(3);
    expect(state.report.reconstruction.map((x: { stage: string }) => x.stage)).toEqual(STAGES);
  });

  test('run --no-recon runs no reconstruction', async () => {
    const off = path.join(f.dir, 'cli-off');
    expect((await cli(['run', ...flags, '--out', off, '--no-recon'])).code).toBe(0);
    const offState = JSON.parse(fs.readFileSync(path.join(off, 'state', 'quantized.json'), 'utf8'));
    expect(offState.plan.reconstruction).toBeNull();
    expect(offState.report.reconstruction).toEqual([]);
  });

  test.each([
    [['--format', 'int3'], /--format: expected one of qdq, qdq-int4, matmulnbits, received 'int3'/],
  ])('run %j is refused naming the flag', async (extra, message) => {
    const r = await cli(['run', ...flags, '--out', path.join(f.dir, `cli-${extra[0]}`), ...extra]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
  });
});
