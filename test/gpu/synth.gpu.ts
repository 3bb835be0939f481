// Data-free synthesis on a CUDA model (native/synth/cuda_synth_engine.h: passes on the GPU,
// losses on the host) against the same synthesis on the CPU engine, on the tiny model and
// options of test/synth.loop.test.ts. Not part of `npm test`: `npm run test:gpu` runs it.
//
// 1. The objective at fixed images (synthesisObjective, no trajectory): every loss part and
//    d total/d images, at step 0 and at a later step with another jitter and other MSR
//    regions. It is the engine's forward and backward with taps (compared in
//    engine.gpu.ts) plus host arithmetic that is the same code on both devices, so the
//    engine's CPU-against-CUDA bars apply: 1e-4 in FP32; 5e-3 (losses, forward) and 1e-2
//    (gradient, backward) in TF32. The same with a memory budget that forces several
//    micro-batches on CUDA, against the single-pass plan: per-image passes in a smaller
//    batch, summation order only (1e-5).
// 2. Loss curves of a short seeded SPDFQ run (APA + MSR + SL + TV, α automatic): per step,
//    every part, |cuda − cpu| / max_step |cpu| over the run. The loop is chaotic: Adam's
//    first step is lr·sign(g), so a pixel whose gradient is near zero can move ±lr on one
//    device and ∓lr on the other, and the curves separate as the run goes on. Tolerances
//    come from measuring that growth on the CPU: the same run (this file's options and
//    seed, ITERS = 20) with the model's weights perturbed, against the unperturbed run:
//      weights × (1 + 1e-6·N(0,1)) (≈ FP32 summation order): total 7e-7 at step 0, 8e-5 over
//        20 steps, worst part 2.3e-4 (apa); × (1 + 1e-5·N(0,1)): 4e-6 at step 0, 6.7e-3 over
//        20 steps, worst part 1.4e-2 (apa);
//      weights rounded to TF32 (one GEMM operand of two): 2e-5 at step 0 (apa 2.4e-4),
//        3.4e-2 over 20 steps, worst part 8.1e-2 (cls).
//    FP32 (CUDA's reference GEMMs against the CPU, summation order ~1e-6): step 0 within
//    the engine's 1e-4; the curve within 2e-2, the 1e-5 proxy's worst part with margin (10×
//    the expected perturbation). TF32 (operands of both sides rounded, ~2× the proxy's
//    perturbation): step 0 within the engine's 5e-3; the curve within 0.25, about 3× the
//    proxy's worst part. The test prints what it measured (the TF32-against-FP32 effect on
//    synthesis that issue #7 asks for); targetProb is printed, not asserted (a probability
//    near a softmax's steep part moves most).

import { synthesisObjective, synthesisPlan, synthesize, SynthesisResult, StepLossRecord } from '../../lib/synth/synthesize';
import { SynthesisOptions } from '../../lib/synth/options';
import { mergeShardResults } from '../../lib/synth/shard-result';
import { createVit, VitDevice, VitModel } from '../../lib/vit';
import { VitConfigInput } from '../../lib/vit-config';
import { nativeAddon } from '../../lib/native';
import { sizableWeights } from '../helpers/synth-model';
import { expectClose, relError } from '../helpers/compare';

const DEVICE = (process.env.SPDFQ_TEST_DEVICE ?? 'cuda:0') as VitDevice;

const CFG: VitConfigInput = { imageSize: 12, channels: 3, patchSize: 3, embedDim: 16, depth: 4, numHeads: 2, mlpDim: 24, numClasses: 6 };
const PRE = { mean: [0.5, 0.4, 0.3], std: [0.25, 0.25, 0.3] };
const WEIGHT_SEED = 33;
const ITERS = 20;
const RUN: SynthesisOptions = { images: 6, iters: ITERS, seed: 1, preprocess: PRE };
const PARTS = ['total', 'apa', 'cls', 'tv'] as const;

// See the header for where these come from.
const OBJECTIVE = {
  fp32: { losses: 1e-4, grad: 1e-4 },
  tf32: { losses: 5e-3, grad: 1e-2 },
};
const MICRO_BATCH = 1e-5;
const CURVE = {
  fp32: { step0: 1e-4, curve: 2e-2 },
  tf32: { step0: 5e-3, curve: 0.25 },
};

const MODES = [
  { label: 'fp32', reference: true },
  { label: 'tf32', reference: false },
] as const;

function cpuModel(): Promise<VitModel> {
  return createVit(CFG, sizableWeights(CFG, WEIGHT_SEED), { threads: 2 });
}

async function cudaModel(reference: boolean, activationBudgetBytes?: number): Promise<VitModel> {
  const m = await createVit(CFG, sizableWeights(CFG, WEIGHT_SEED), { device: DEVICE, reference, activationBudgetBytes });
  expect(m.device).toBe(DEVICE === 'cuda' ? 'cuda:0' : DEVICE);
  return m;
}

// The worst relative deviation of each part's curve over steps [0, upto).
function curveError(a: StepLossRecord[], b: StepLossRecord[], part: keyof StepLossRecord, upto: number): number {
  return relError(a.slice(0, upto).map((l) => l[part]), b.slice(0, upto).map((l) => l[part]));
}

function expectWithin(what: string, err: number, tol: number): void {
  if (!(err <= tol)) throw new Error(`${what}: CUDA against CPU relative error ${err.toExponential(2)} exceeds ${tol.toExponential(1)}`);
}

function report(label: string, gpu: SynthesisResult, cpu: SynthesisResult): string {
  const windows = [1, 5, 10, ITERS];
  const parts = [...PARTS, 'targetProb'] as const;
  const rows = windows.map((n) => `  steps < ${String(n).padStart(2)}: ` + parts.map((p) => `${p} ${curveError(gpu.losses, cpu.losses, p, n).toExponential(1)}`).join('  '));
  let image = 0;
  for (let i = 0; i < cpu.images.length; i++) image = Math.max(image, Math.abs(gpu.images[i] - cpu.images[i]));
  const alpha = Math.abs(gpu.alpha! - cpu.alpha!) / cpu.alpha!;
  return [`synthesis on ${DEVICE} (${label}) against the CPU: α rel ${alpha.toExponential(1)}, max |Δ pixel| ${image.toFixed(3)}`, ...rows].join('\n');
}

beforeAll(() => {
  const addon = nativeAddon();
  if (!addon.backends().includes('cuda')) throw new Error('the addon was built without the CUDA backend');
  const info = addon.cudaDevices();
  if (info.count === 0) throw new Error(`no usable CUDA device: ${info.reason}`);
});

describe.each(MODES)('synthesis on CUDA with $label GEMMs against the CPU engine', (mode) => {
  test('the objective and its gradient at fixed images, at two steps', async () => {
    const cpu = await cpuModel();
    const gpu = await cudaModel(mode.reference);
    const tol = OBJECTIVE[mode.label];
    // Images a few steps into a run, so attention is no longer that of noise.
    const start = await synthesize(cpu, { ...RUN, iters: 3 });
    for (const step of [0, 7]) {
      const a = await synthesisObjective(cpu, RUN, start.images, step, start.alpha!);
      const b = await synthesisObjective(gpu, RUN, start.images, step, start.alpha!);
      for (const p of [...PARTS, 'targetProb'] as const) {
        expect(Math.abs(b.losses[p] - a.losses[p]) / Math.max(Math.abs(a.losses[p]), 1e-30)).toBeLessThanOrEqual(tol.losses);
      }
      expectClose(`d total/d images at step ${step}`, b.grad!, a.grad!, tol.grad);
    }
    await cpu.dispose();
    await gpu.dispose();
  });

  test('micro-batched to a device-memory budget: the same objective as one pass', async () => {
    const gpu = await cudaModel(mode.reference);
    const whole = await synthesisPlan(gpu, RUN);
    expect(whole.chunkImages).toBe(RUN.images);
    // On CUDA the budget bounds device memory: the activation arena for 2 samples per pass.
    const budget = gpu.activationBytes(2);
    const small = { ...RUN, memoryBudgetBytes: budget };
    const plan = await synthesisPlan(gpu, small);
    expect(plan).toMatchObject({ chunkImages: 2, regionBatch: 2, bytes: budget });
    const start = await synthesize(gpu, { ...RUN, iters: 2 });
    const a = await synthesisObjective(gpu, RUN, start.images, 5, start.alpha!);
    const b = await synthesisObjective(gpu, small, start.images, 5, start.alpha!);
    for (const p of [...PARTS, 'targetProb'] as const) {
      expect(Math.abs(b.losses[p] - a.losses[p]) / Math.max(Math.abs(a.losses[p]), 1e-30)).toBeLessThanOrEqual(MICRO_BATCH);
    }
    expectClose('d total/d images, micro-batched', b.grad!, a.grad!, MICRO_BATCH);
    // Under one sample per pass it is refused by name, in device memory.
    await expect(synthesisPlan(gpu, { ...RUN, memoryBudgetBytes: gpu.activationBytes(1) - 1 })).rejects.toMatchObject({
      code: 'E_MEMORY',
      message: expect.stringMatching(/of device memory on cuda:\d+/),
    });
    await gpu.dispose();
  });

  test(`a seeded SPDFQ run of ${ITERS} steps: loss curves, progress, determinism`, async () => {
    const cpu = await cpuModel();
    const gpu = await cudaModel(mode.reference);
    const a = await synthesize(cpu, RUN);
    const steps: number[] = [];
    const b = await synthesize(gpu, { ...RUN, onProgress: (p) => steps.push(p.step) });
    expect(b.stepsDone).toBe(ITERS);
    expect(steps).toEqual(Array.from({ length: ITERS }, (_, i) => i));
    // Targets, priors and the step draws come from the seed on the host: identical.
    expect(Array.from(b.targets)).toEqual(Array.from(a.targets));
    expect(Array.from(b.priors!.maps)).toEqual(Array.from(a.priors!.maps));
    console.log(report(mode.label, b, a));
    const tol = CURVE[mode.label];
    for (const p of PARTS) {
      expectWithin(`${p} at step 0`, curveError(b.losses, a.losses, p, 1), tol.step0);
      expectWithin(`${p} over ${ITERS} steps`, curveError(b.losses, a.losses, p, ITERS), tol.curve);
    }
    // The run still does what it is for on the GPU.
    expect(b.losses[ITERS - 1].apa).toBeLessThan(b.losses[0].apa);
    expect(b.losses[ITERS - 1].targetProb).toBeGreaterThan(b.losses[0].targetProb);
    // The same seed on the same GPU gives the same images (deterministic kernels).
    const c = await synthesize(gpu, RUN);
    expect(Buffer.from(c.images.buffer).equals(Buffer.from(b.images.buffer))).toBe(true);
    await cpu.dispose();
    await gpu.dispose();
  });

  test('3 shards (docs/scale-out.md, "Synthesis shards"), merged, are the unsplit run bit for bit, micro-batched or not', async () => {
    // Exact on the CPU engines (test/synth.shard.test.ts); on CUDA it rests on every kernel
    // computing a row the same whatever the rows beside it (fixed GEMM tiles, no split-K,
    // per-row LayerNorm and softmax), which this checks.
    const gpu = await cudaModel(mode.reference);
    for (const o of [{ ...RUN, images: 7, iters: 4, msr: true, sl: true }, { ...RUN, images: 7, iters: 4, msr: true, memoryBudgetBytes: gpu.activationBytes(3) }]) {
      const whole = await synthesize(gpu, o);
      const parts: SynthesisResult[] = [];
      for (let index = 0; index < 3; index++) parts.push(await synthesize(gpu, { ...o, shard: { index, count: 3 } }));
      const merged = mergeShardResults(parts.map((result, i) => ({ source: `s${i}`, result })));
      expect(Buffer.from(merged.images.buffer).equals(Buffer.from(whole.images.buffer))).toBe(true);
    }
    await gpu.dispose();
  });
});

test('cancellation on CUDA keeps the images of the completed steps and leaves the model usable', async () => {
  const gpu = await cudaModel(false);
  const ac = new AbortController();
  let seen = 0;
  const err = await synthesize(gpu, {
    ...RUN,
    iters: 500,
    signal: ac.signal,
    onProgress: () => {
      if (++seen === 3) ac.abort();
    },
  }).then(() => null, (e: unknown) => e);
  expect(err).toMatchObject({ code: 'E_CANCELLED' });
  const out = await gpu.forward(new Float32Array(432), 1);
  expect(out.logits.every(Number.isFinite)).toBe(true);
  await gpu.dispose();
});
