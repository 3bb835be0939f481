// Synthesis shards (`synth --shard i/n`, `synth --merge`): the n shards of a run, merged, are
// the unsplit run's images and draws bit for bit, for every method a shard accepts, with
// micro-batching forced and not, on a tiny ViT and a tiny Swin (the runs of
// test/helpers/synth-shard-cases.ts, whose unsplit results test/synth.unsplit-pin.test.ts
// pins to main's); the parts that couple all images are refused with the reason; merge
// refuses missing, duplicate and mismatched shards; the CLI takes the shard from Slurm's or
// Kubernetes' environment.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runSynthCommand, SynthArgs } from '../lib/cli/commands/synth';
import { SwinModel } from '../lib/swin';
import { mergeShardResults } from '../lib/synth/shard-result';
import { SynthesisOptions } from '../lib/synth/options';
import { synthesize, SynthesisResult } from '../lib/synth/synthesize';
import { VitModel } from '../lib/vit';
import { SYNTH_CASES, tinySwin, tinyVit, VIT_CFG, VIT_PRE } from './helpers/synth-shard-cases';

let vit: VitModel;
let swin: SwinModel;
beforeAll(async () => {
  vit = await tinyVit();
  swin = tinySwin();
});
afterAll(async () => {
  await vit.dispose();
  await swin.dispose();
});

async function shards(model: VitModel | SwinModel, o: SynthesisOptions, n: number): Promise<SynthesisResult[]> {
  const out: SynthesisResult[] = [];
  for (let index = 0; index < n; index++) out.push(await synthesize(model, { ...o, shard: { index, count: n } }));
  return out;
}

const merge = (parts: SynthesisResult[]) => mergeShardResults(parts.map((result, i) => ({ source: `s${i}`, result })));
const bytes = (a: ArrayBufferView | null | undefined) => (a ? Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64') : a);

function expectSameRun(merged: SynthesisResult, whole: SynthesisResult): void {
  expect(merged.shape).toEqual(whole.shape);
  // Bit for bit: the bytes of every per-image array, not values within a tolerance.
  expect(bytes(merged.images)).toBe(bytes(whole.images));
  expect(bytes(merged.targets)).toBe(bytes(whole.targets));
  expect(bytes(merged.regionClasses)).toBe(bytes(whole.regionClasses));
  expect(bytes(merged.softLogits?.own)).toBe(bytes(whole.softLogits?.own));
  expect(bytes(merged.softLogits?.cells)).toBe(bytes(whole.softLogits?.cells));
  expect(bytes(merged.priors?.maps)).toBe(bytes(whole.priors?.maps));
  expect(merged.windowPriors?.map((t) => bytes(t.maps))).toEqual(whole.windowPriors?.map((t) => bytes(t.maps)));
  expect(merged.alpha).toBe(whole.alpha);
  expect(merged.plan).toEqual(whole.plan);
  expect(merged.options).toEqual(whole.options);
  // Each shard's losses are its part of the batch's: their sums are the run's up to rounding.
  expect(merged.losses.length).toBe(whole.losses.length);
  merged.losses.forEach((l, i) => {
    for (const k of ['total', 'apa', 'cls', 'tv', 'pse', 'targetProb'] as const) expect(l[k]).toBeCloseTo(whole.losses[i][k], 9);
  });
}

const shardable = SYNTH_CASES.filter((c) => !c.unshardable);

test.each(shardable.map((c) => [c.name, c] as const))('%s: 3 shards merge into the unsplit run bit for bit', async (_name, c) => {
  const model = c.model === 'vit' ? vit : swin;
  const whole = await synthesize(model, c.options);
  const parts = await shards(model, c.options, 3);
  expect(parts.map((p) => p.shape[0])).toEqual([2, 2, 3]);
  // The shards' images are distinct slices, not copies of one.
  expect(bytes(parts[1].images)).not.toBe(bytes(parts[0].images));
  expectSameRun(merge(parts), whole);
});

test('one image per shard (7 shards across micro-batches of 2 images and 2 regions) is exact too', async () => {
  const c = SYNTH_CASES.find((x) => x.name === 'spdfq APA+MSR+SL micro-batched')!;
  const whole = await synthesize(vit, c.options);
  expect(whole.plan).toMatchObject({ chunkImages: 2, regionBatch: 2 });
  expectSameRun(merge(await shards(vit, c.options, 7)), whole);
});

test('the micro-batch plan is part of the result, and the byte comparison sees its last bits', async () => {
  // Another plan (3 images per pass instead of 2) rounds each classification gradient by
  // another n: the images differ, so a shard normalizing by its own rows would fail above
  // (checked by hand: dividing by the shard's rows fails 9 of the 12 cases, by the region
  // pass's own rows 5).
  const c = SYNTH_CASES.find((x) => x.name === 'spdfq APA+MSR+SL micro-batched')!;
  const a = await synthesize(vit, c.options);
  const b = await synthesize(vit, { ...c.options, memoryBudgetBytes: 400 * 1024 });
  expect(b.plan!.chunkImages).not.toBe(a.plan!.chunkImages);
  expect(bytes(b.images)).not.toBe(bytes(a.images));
});

test.each(SYNTH_CASES.filter((c) => c.unshardable).map((c) => [c.name, c] as const))('%s refuses a shard, saying why', async (_name, c) => {
  await expect(synthesize(vit, { ...c.options, shard: { index: 0, count: 2 } })).rejects.toThrow(
    /synthesis option shard: expected losses that are sums over images .*this psaq run uses PSAQ-ViT's patch-similarity entropy, whose kernel density spans the similarity range of the whole batch/,
  );
});

test('the coupled parts are refused one by one, and more shards than images', async () => {
  const o: SynthesisOptions = { method: 'inversion', images: 4, iters: 1, preprocess: VIT_PRE, shard: { index: 1, count: 2 } };
  await expect(synthesize(vit, { ...o, tv: { form: 'l2' } })).rejects.toThrow(/the 'l2' TV prior, one norm over the whole batch/);
  await expect(synthesize(vit, { ...o, tv: { form: 'l1', target: [1, 2] } })).rejects.toThrow(/PSAQ-ViT's TV target, whose sign is set by the whole batch's TV/);
  await expect(synthesize(vit, { ...o, method: 'spdfq', pse: true })).rejects.toThrow(/patch-similarity entropy/);
  await expect(synthesize(vit, { ...o, shard: { index: 0, count: 5 } })).rejects.toThrow(/at most one shard per image \(4 images\)/);
  await expect(synthesize(vit, { ...o, shard: { index: 2, count: 2 } })).rejects.toThrow(/synthesis option shard: expected \{ index, count \} with 0 ≤ index < count/);
  // One shard of one is the whole run.
  const one = await synthesize(vit, { ...o, shard: { index: 0, count: 1 } });
  expect(one.options.shard).toBeUndefined();
});

test('merge refuses missing, duplicate and mismatched shards and unsharded runs', async () => {
  const o: SynthesisOptions = { method: 'inversion', images: 4, iters: 1, seed: 3, preprocess: VIT_PRE };
  const parts = (await shards(vit, o, 3)).map((result, i) => ({ source: `s${i}`, result }));
  expect(() => mergeShardResults([parts[0], parts[2]])).toThrow(/synth --merge: missing shard 1\/3 of the 3/);
  expect(() => mergeShardResults([parts[0], parts[1], parts[1], parts[2]])).toThrow(/shard 1\/3 given twice \(s1 and s1\)/);
  const other = await synthesize(vit, { ...o, seed: 4, shard: { index: 1, count: 3 } });
  expect(() => mergeShardResults([parts[0], { source: 'x', result: other }, parts[2]])).toThrow(/x was made with other options than s0/);
  const ofTwo = await synthesize(vit, { ...o, shard: { index: 1, count: 2 } });
  expect(() => mergeShardResults([...parts, { source: 'y', result: ofTwo }])).toThrow(/y is shard 1\/2, s0 one of 3 shards/);
  const replanned = { source: 'z', result: { ...parts[1].result, plan: { ...parts[1].result.plan!, chunkImages: 1 } } };
  expect(() => mergeShardResults([parts[0], replanned, parts[2]])).toThrow(/z ran micro-batches of .*another thread count or device/);
  const whole = await synthesize(vit, o);
  expect(() => mergeShardResults([{ source: 'w', result: whole }])).toThrow(/w is not a shard/);
  expect(() => mergeShardResults([])).toThrow(/received none/);
});

describe('the CLI', () => {
  const stderr = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;
  const deps = () => ({ loadModel: async () => ({ config: VIT_CFG, model: vit, ownsModel: false }), stderr });
  const args = (out: string, extra: Partial<SynthArgs> = {}): SynthArgs => ({
    model: 'tiny.onnx', method: 'spdfq', images: 5, iters: 3, out, seed: 7, pngs: false, progress: false, mean: VIT_PRE.mean, std: VIT_PRE.std, msr: true, ...extra,
  });
  const ENV = ['SLURM_ARRAY_TASK_ID', 'SLURM_ARRAY_TASK_COUNT', 'SLURM_ARRAY_TASK_MIN', 'SLURM_ARRAY_TASK_STEP', 'JOB_COMPLETION_INDEX', 'SPDFQ_SHARDS'];
  const saved = ENV.map((k) => process.env[k]);
  afterEach(() => ENV.forEach((k, i) => (saved[i] === undefined ? delete process.env[k] : (process.env[k] = saved[i]))));

  test('`synth --shard i/n` writes OUT/shards/i-of-n; `synth --merge` writes the unsplit run\'s files byte for byte', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'spdfq-synth-shard-'));
    await runSynthCommand(args(path.join(root, 'whole')), deps());
    const out = path.join(root, 'run');
    for (let i = 0; i < 3; i++) await runSynthCommand(args(out, { shard: `${i}/3` }), deps());
    expect(fs.readdirSync(path.join(out, 'shards')).sort()).toEqual(['0-of-3', '1-of-3', '2-of-3']);
    await runSynthCommand(args(out, { model: undefined, merge: [2, 0, 1].map((i) => path.join(out, 'shards', `${i}-of-3`)) }), deps());
    for (const f of ['images.npy', 'targets.json', 'priors.npy']) expect(fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(root, 'whole', f)))).toBe(true);
    await expect(runSynthCommand(args(path.join(root, 'm2'), { model: undefined, merge: [path.join(out, 'shards', '0-of-3'), path.join(root, 'whole')] }), deps())).rejects.toThrow(/is not a shard/);
    await expect(runSynthCommand(args(path.join(root, 'm3'), { model: undefined, merge: [path.join(root, 'nothing')] }), deps())).rejects.toThrow(/holds no finished synth output/);
    await expect(runSynthCommand(args(path.join(root, 'm4'), { model: undefined }), deps())).rejects.toThrow(/--model: expected an ONNX model file/);
  });

  test('the shard defaults to the Slurm array task, or the Kubernetes completion index of --shards', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'spdfq-synth-env-'));
    Object.assign(process.env, { SLURM_ARRAY_TASK_ID: '5', SLURM_ARRAY_TASK_COUNT: '3', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_STEP: '2' });
    const r = await runSynthCommand(args(root, { method: 'noise' }), deps());
    expect(r.options.shard).toEqual({ index: 2, count: 3 });
    expect(fs.existsSync(path.join(root, 'shards', '2-of-3', 'images.npy'))).toBe(true);
    // --shard none: all images even inside an array job.
    expect((await runSynthCommand(args(path.join(root, 'all'), { method: 'noise', shard: 'none' }), deps())).shape[0]).toBe(5);
    for (const k of ENV) delete process.env[k];
    process.env.JOB_COMPLETION_INDEX = '1';
    await expect(runSynthCommand(args(path.join(root, 'k'), { method: 'noise' }), deps())).rejects.toThrow(/pass --shards <completions> or set \$SPDFQ_SHARDS/);
    const k = await runSynthCommand(args(path.join(root, 'k'), { method: 'noise', shards: 2 }), deps());
    expect(k.options.shard).toEqual({ index: 1, count: 2 });
    expect(k.shape[0]).toBe(3);
  });
});
