// The CUDA backend through the public API (createVit with { device: 'cuda:0' }), so the
// binding path (VitModelWrap holding a CudaVit) runs too: the same PyTorch float64 fixtures
// the CPU engine is held to (test/engine.fixtures.test.ts) — logits, both taps, the input
// gradient with and without injected tap gradients, every weight gradient — in FP32
// (reference: true) and TF32 (the default); then the CUDA model against the CPU model on
// the same weights and inputs (logits, attention taps, input gradient) in both modes; the
// quantization hooks (calibration, activation and weight fake quantization) against the
// CPU; the CPU-only operations refused with a coded error; and CUDA errors arriving as
// coded JS exceptions. Synthesis on CUDA is tested in synth.gpu.ts. Not part of `npm test`: `npm run test:gpu` runs it on a GPU.
//
// Tolerances (relative to each tensor's max |value|):
//   FP32: 1e-4, the CPU engine's bar against the same fixtures.
//   TF32: 5e-3 forward, 1e-2 gradients. TF32 rounds both GEMM operands to 10 explicit
//   mantissa bits (unit roundoff 2⁻¹¹ ≈ 4.9e-4) and accumulates in FP32, so one GEMM is
//   good to about 3e-4 of its output's scale; the error adds up over the blocks, and the
//   backward passes through about twice as many products as the forward.

import { createVit, VitDevice, VitModel } from '../../lib/vit';
import { nativeAddon } from '../../lib/native';
import { CalibrationRequest, SiteName, SiteQuantizer, TensorQuantizer, WeightQuantizer } from '../../lib/native';
import { fixtureParams, listEngineFixtures, loadEngineFixture, EngineFixture } from '../helpers/fixtures';
import { expectClose, relError } from '../helpers/compare';

const DEVICE = (process.env.SPDFQ_TEST_DEVICE ?? 'cuda:0') as VitDevice;

// CUDA against the CPU engine on the same weights, both in FP32 arithmetic: the two differ
// only in summation order (tiled GEMMs, warp reductions), so the CPU engine's own bar
// against float64 PyTorch holds between them.
const CPU_FP32 = 1e-4;
// CUDA in TF32 (the default) against the CPU in FP32. TF32 keeps 10 explicit mantissa bits
// (unit roundoff 2⁻¹¹ ≈ 4.9e-4) and accumulates in FP32, so one GEMM's output is good to
// about 3e-4 of its scale (errors of independent products partly cancel over K). The
// forward chains 4 GEMMs per block plus the attention products, and softmax turns a score
// error δ into a relative probability error of about δ: 5e-3 leaves ~10× headroom over a
// depth-2 fixture's estimated error. The input gradient goes through about twice as many
// products (each GEMM has two backward GEMMs), hence 1e-2. The same values as against the
// fixtures above, since the CPU's own error (≤ 1e-4) is negligible next to TF32's.
const CPU_TF32_FORWARD = 5e-3;
const CPU_TF32_BACKWARD = 1e-2;
// Fake-quantized forward (8-bit, FP32 GEMMs): an input within an ulp of a rounding
// boundary can land one level apart on the two devices; one 8-bit level is 1/255 ≈ 4e-3 of
// a site's range, and a few such steps propagate through the blocks (docs/cuda.md).
const CPU_QUANT = 3e-2;

const MODES = [
  { label: 'fp32', reference: true, fwd: 1e-4, bwd: 1e-4 },
  { label: 'tf32', reference: false, fwd: 5e-3, bwd: 1e-2 },
] as const;

function tensor(fx: EngineFixture, name: string): Float32Array {
  const t = fx.tensors.get(name);
  if (!t) throw new Error(`fixture ${fx.name} lacks tensor ${name}`);
  return t.data;
}

async function cudaModel(fx: EngineFixture, reference: boolean): Promise<VitModel> {
  const model = await createVit(fx.config, fixtureParams(fx), { threads: 1, reference, device: DEVICE });
  // Guard against passing on the CPU: the model must say where it runs ('cuda' → 'cuda:0').
  expect(model.device).toBe(DEVICE === 'cuda' ? 'cuda:0' : DEVICE);
  return model;
}

beforeAll(() => {
  const addon = nativeAddon();
  if (!addon.backends().includes('cuda')) throw new Error('the addon was built without the CUDA backend');
  const info = addon.cudaDevices();
  if (info.count === 0) throw new Error(`no usable CUDA device: ${info.reason}`);
});

test('the addon was built with the CUDA backend', () => {
  expect(nativeAddon().backends()).toContain('cuda');
});

describe.each(listEngineFixtures())('fixture %s on CUDA', (name) => {
  const fx = loadEngineFixture(name);
  const depth = fx.config.depth;

  describe.each(MODES)('$label GEMMs', (mode) => {
    test('forward: logits, attention probabilities and A·V taps', async () => {
      const model = await cudaModel(fx, mode.reference);
      const out = await model.forward(tensor(fx, 'input'), fx.batch, { attention: true, attentionValues: true });
      expectClose('logits', out.logits, tensor(fx, 'logits'), mode.fwd);
      for (let l = 0; l < depth; l++) {
        expectClose(`attn.${l}`, out.attention![l], tensor(fx, `attn.${l}`), mode.fwd);
        expectClose(`av.${l}`, out.attentionValues![l], tensor(fx, `av.${l}`), mode.fwd);
      }
      await model.dispose();
    });

    test('backward: input gradient and every weight gradient, with tap gradients injected', async () => {
      const model = await cudaModel(fx, mode.reference);
      await model.forward(tensor(fx, 'input'), fx.batch);
      const res = await model.backward(tensor(fx, 'grad_in.logits'), {
        tapAttention: Array.from({ length: depth }, (_, l) => tensor(fx, `grad_in.attn.${l}`)),
        tapAttentionValues: Array.from({ length: depth }, (_, l) => tensor(fx, `grad_in.av.${l}`)),
        weightGrads: true,
      });
      expectClose('grad.input', res.inputGrad, tensor(fx, 'grad.input'), mode.bwd);
      for (const spec of model.paramSpecs) {
        expectClose(`grad.param.${spec.name}`, res.weightGrads!.get(spec.name)!, tensor(fx, `grad.param.${spec.name}`), mode.bwd);
      }
      await model.dispose();
    });

    test('backward without taps or weight gradients (the synthesis path)', async () => {
      const model = await cudaModel(fx, mode.reference);
      await model.forward(tensor(fx, 'input'), fx.batch);
      const res = await model.backward(tensor(fx, 'grad_in.logits'));
      expect(res.weightGrads).toBeUndefined();
      expectClose('grad_logits_only.input', res.inputGrad, tensor(fx, 'grad_logits_only.input'), mode.bwd);
      await model.dispose();
    });
  });

  describe.each([
    { label: 'fp32', reference: true, fwd: CPU_FP32, bwd: CPU_FP32 },
    { label: 'tf32 (default)', reference: false, fwd: CPU_TF32_FORWARD, bwd: CPU_TF32_BACKWARD },
  ])('CUDA $label against the CPU engine on the same weights', (mode) => {
    test('logits, features, attention taps, and the input gradient with taps injected', async () => {
      const cpu = await createVit(fx.config, fixtureParams(fx), { threads: 2 });
      const gpu = await cudaModel(fx, mode.reference);
      const opts = { features: true, attention: true, attentionValues: true };
      const a = await cpu.forward(tensor(fx, 'input'), fx.batch, opts);
      const b = await gpu.forward(tensor(fx, 'input'), fx.batch, opts);
      expectClose('logits', b.logits, a.logits, mode.fwd);
      expectClose('features', b.features!, a.features!, mode.fwd);
      for (let l = 0; l < depth; l++) {
        expectClose(`attn.${l}`, b.attention![l], a.attention![l], mode.fwd);
        expectClose(`av.${l}`, b.attentionValues![l], a.attentionValues![l], mode.fwd);
      }
      const taps = {
        tapAttention: Array.from({ length: depth }, (_, l) => tensor(fx, `grad_in.attn.${l}`)),
        tapAttentionValues: Array.from({ length: depth }, (_, l) => tensor(fx, `grad_in.av.${l}`)),
      };
      const ga = await cpu.backward(tensor(fx, 'grad_in.logits'), taps);
      const gb = await gpu.backward(tensor(fx, 'grad_in.logits'), taps);
      expectClose('grad.input', gb.inputGrad, ga.inputGrad, mode.bwd);
      await cpu.dispose();
      await gpu.dispose();
    });
  });
});

// Uniform 8-bit quantizers at every linear input, min-max ranges: deterministic and
// simple, so CPU and CUDA can be compared site by site.
const QUANT_SITES: SiteName[] = ['qkv_in', 'proj_in', 'fc1_in', 'fc2_in'];

describe('quantization hooks on CUDA against the CPU engine', () => {
  const fx = loadEngineFixture(listEngineFixtures()[0]);
  const requests: CalibrationRequest[] = [
    { site: 'patch_in', kind: 'uniform', bits: 8, method: 'minmax', symmetric: false, percentiles: [], perChannel: false },
    ...Array.from({ length: fx.config.depth }, (_, block) =>
      QUANT_SITES.map((site): CalibrationRequest => ({ site, block, kind: 'uniform', bits: 8, method: 'minmax', symmetric: false, percentiles: [], perChannel: false })),
    ).flat(),
  ];

  function weightQuantizers(model: VitModel): WeightQuantizer[] {
    const weights = model.getWeights();
    return model.paramSpecs
      .filter((p) => p.shape.length === 2 && /^blocks\.\d+\.(attn|mlp)\.\w+\.weight$/.test(p.name))
      .map((p) => ({
        name: p.name,
        ...nativeAddon().quantSearch(weights.get(p.name)!, p.shape[0], p.shape[1], 0, { kind: 'uniform', bits: 8, symmetric: false, method: 'minmax', percentiles: [] }),
      }));
  }

  test('calibration observes the same ranges, and the fake-quantized forward agrees', async () => {
    const cpu = await createVit(fx.config, fixtureParams(fx), { threads: 2 });
    const gpu = await cudaModel(fx, true);
    const qc = cpu.nativeHandle();
    const qg = gpu.nativeHandle();
    const input = tensor(fx, 'input');
    const rc = (await cpu.exclusive(() => qc.calibrate(input, fx.batch, fx.batch, requests))) as TensorQuantizer[];
    const rg = (await gpu.exclusive(() => qg.calibrate(input, fx.batch, fx.batch, requests))) as TensorQuantizer[];
    rc.forEach((q, i) => {
      // Min-max of values that agree to ~1e-5 relative; one extra decade of headroom.
      expect(Math.abs(rg[i].scale - q.scale) / q.scale).toBeLessThanOrEqual(CPU_FP32 * 10);
    });
    // Install the CPU's quantizers on both, so only the arithmetic differs.
    const sites: SiteQuantizer[] = rc.map((q, i) => ({ ...q, site: requests[i].site, block: requests[i].block }));
    const wq = weightQuantizers(cpu);
    for (const [m, q] of [[cpu, qc], [gpu, qg]] as const) {
      await m.exclusive(async () => {
        q.setActQuant(sites);
        q.setWeightQuant(wq);
      });
    }
    // The quantized weights are made on the host from the same fp weights: bitwise equal.
    expect(qg.getQuantParams()).toEqual(qc.getQuantParams());
    const a = await cpu.forward(input, fx.batch, { attention: true });
    const b = await gpu.forward(input, fx.batch, { attention: true });
    expectClose('quantized logits', b.logits, a.logits, CPU_QUANT);
    for (let l = 0; l < fx.config.depth; l++) expectClose(`quantized attn.${l}`, b.attention![l], a.attention![l], CPU_QUANT);
    // Gradients through the straight-through estimator run on CUDA as well.
    const ga = await cpu.backward(tensor(fx, 'grad_in.logits'));
    const gb = await gpu.backward(tensor(fx, 'grad_in.logits'));
    expectClose('quantized grad.input', gb.inputGrad, ga.inputGrad, CPU_QUANT);
    // Removing the quantizers brings both back to the float model.
    for (const [m, q] of [[cpu, qc], [gpu, qg]] as const) {
      await m.exclusive(async () => {
        q.setActQuant(null);
        q.setWeightQuant(null);
      });
    }
    const fpc = await cpu.forward(input, fx.batch);
    const fpg = await gpu.forward(input, fx.batch);
    expect(relError(a.logits, fpc.logits)).toBeGreaterThan(0); // the quantizers did act
    expectClose('fp logits after removing the quantizers', fpg.logits, fpc.logits, CPU_FP32);
    await cpu.dispose();
    await gpu.dispose();
  });

  test('the operations that run on the CPU only are refused by name on a CUDA model', async () => {
    const gpu = await cudaModel(fx, false);
    const q = gpu.nativeHandle();
    expect(() => q.setIntegerMode(true)).toThrow(/setIntegerMode \(integer execution\) runs on the CPU only, and this model is on cuda:\d+/);
    expect(() => q.setIntegerMode(false)).not.toThrow(); // never on, so always off
    let err: unknown;
    try {
      await q.reconstruct(tensor(fx, 'input'), fx.batch, { iters: 1, lr: 1e-5, batch: 1, seed: 0, rounding: 'ste', roundLr: 1e-3, roundReg: 0.01, roundWarmup: 0.2, qdrop: 0, holdout: 0, checkEvery: 1, embed: false, head: false, learnSteps: false, stepLr: 0 });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'E_CONFIG', message: expect.stringMatching(/reconstruct \(block reconstruction\) runs on the CPU only/) });
    // Synthesis runs on CUDA (test/gpu/synth.gpu.ts).
    // The model is still usable, and setThreads is accepted (a GPU pass has no host threads).
    await gpu.setThreads(3);
    const out = await gpu.forward(tensor(fx, 'input'), fx.batch);
    expect(out.logits.every(Number.isFinite)).toBe(true);
    await gpu.dispose();
  });
});

describe('errors from the CUDA backend are coded JavaScript exceptions', () => {
  const fx = loadEngineFixture(listEngineFixtures()[0]);

  test('a device that does not exist', async () => {
    await expect(createVit(fx.config, fixtureParams(fx), { device: 'cuda:97' })).rejects.toMatchObject({
      code: 'E_CONFIG',
      message: expect.stringMatching(/device 'cuda:97': this machine has \d+ CUDA device\(s\)/),
    });
  });

  test('a batch over the activation budget names the batch that fits', async () => {
    const probe = await cudaModel(fx, false);
    const one = probe.activationBytes(1); // the CUDA arena's size for one image
    await probe.dispose();
    const model = await createVit(fx.config, fixtureParams(fx), { device: DEVICE, activationBudgetBytes: one });
    const n = tensor(fx, 'input').length / fx.batch;
    await expect(model.forward(new Float32Array(n * 64), 64)).rejects.toMatchObject({ code: 'E_MEMORY' });
    await expect(model.forward(new Float32Array(n * 64), 64)).rejects.toThrow(/largest batch that fits is 1/);
    // The model stays usable.
    const out = await model.forward(tensor(fx, 'input').subarray(0, n), 1);
    expect(out.logits.every(Number.isFinite)).toBe(true);
    await model.dispose();
  });

  test('backward before forward', async () => {
    const model = await cudaModel(fx, false);
    await expect(model.backward(new Float32Array(fx.batch * fx.config.numClasses))).rejects.toMatchObject({ code: 'E_STATE' });
    await model.dispose();
  });
});
