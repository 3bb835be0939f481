// The CUDA backend through the public API (createVit with { device: 'cuda:0' }): the same
// PyTorch float64 fixtures the CPU engine is held to (test/engine.fixtures.test.ts) —
// logits, both taps, the input gradient with and without injected tap gradients, every
// weight gradient — in FP32 (reference: true) and TF32 (the default), then the CUDA model
// against the CPU model on the same inputs, and errors arriving as coded JS exceptions.
//
// Tolerances (relative to each tensor's max |value|):
//   FP32: 1e-4, the CPU engine's bar against the same fixtures.
//   TF32: 5e-3 forward, 1e-2 gradients. TF32 rounds both GEMM operands to 10 explicit
//   mantissa bits (unit roundoff 2⁻¹¹ ≈ 4.9e-4) and accumulates in FP32, so one GEMM is
//   good to about 3e-4 of its output's scale; the error adds up over the blocks, and the
//   backward passes through about twice as many products as the forward.

import { createVit, VitOptions, VitModel } from '../../lib/vit';
import { nativeAddon } from '../../lib/native';
import { fixtureParams, listEngineFixtures, loadEngineFixture, EngineFixture } from '../helpers/fixtures';
import { expectClose, relError } from '../helpers/compare';

const DEVICE = process.env.SPDFQ_TEST_DEVICE ?? 'cuda:0';

const MODES = [
  { label: 'fp32', reference: true, fwd: 1e-4, bwd: 1e-4 },
  { label: 'tf32', reference: false, fwd: 5e-3, bwd: 1e-2 },
] as const;

function tensor(fx: EngineFixture, name: string): Float32Array {
  const t = fx.tensors.get(name);
  if (!t) throw new Error(`fixture ${fx.name} lacks tensor ${name}`);
  return t.data;
}

// VitOptions gains `device` with the CUDA binding; the cast keeps this file compiling
// against either version of the type.
async function cudaModel(fx: EngineFixture, reference: boolean): Promise<VitModel> {
  const options = { threads: 1, reference, device: DEVICE } as VitOptions;
  const model = await createVit(fx.config, fixtureParams(fx), options);
  // Guard against passing on the CPU: the model must say where it runs.
  expect((model as unknown as { device?: string }).device).toBe(DEVICE);
  return model;
}

beforeAll(() => {
  const addon = nativeAddon() as unknown as { cudaDevices?: () => { count: number; reason: string } };
  if (!addon.cudaDevices) throw new Error('the addon has no cudaDevices(): it was built without the CUDA backend');
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

  test('CUDA (fp32) against the CPU engine on the same inputs', async () => {
    const cpu = await createVit(fx.config, fixtureParams(fx), { threads: 2 });
    const gpu = await cudaModel(fx, true);
    const a = await cpu.forward(tensor(fx, 'input'), fx.batch, { features: true });
    const b = await gpu.forward(tensor(fx, 'input'), fx.batch, { features: true });
    expect(relError(b.logits, a.logits)).toBeLessThanOrEqual(1e-4);
    expect(relError(b.features!, a.features!)).toBeLessThanOrEqual(1e-4);
    const ga = await cpu.backward(tensor(fx, 'grad_in.logits'));
    const gb = await gpu.backward(tensor(fx, 'grad_in.logits'));
    expect(relError(gb.inputGrad, ga.inputGrad)).toBeLessThanOrEqual(1e-4);
    await cpu.dispose();
    await gpu.dispose();
  });
});

describe('errors from the CUDA backend are coded JavaScript exceptions', () => {
  const fx = loadEngineFixture(listEngineFixtures()[0]);

  test('a device that does not exist', async () => {
    const options = { device: 'cuda:97' } as VitOptions;
    await expect(createVit(fx.config, fixtureParams(fx), options)).rejects.toMatchObject({ code: 'E_CONFIG' });
  });

  test('a batch over the activation budget names the batch that fits', async () => {
    const probe = await cudaModel(fx, false);
    const one = probe.activationBytes(1); // the CUDA arena's size for one image
    await probe.dispose();
    const options = { device: DEVICE, activationBudgetBytes: one } as VitOptions;
    const model = await createVit(fx.config, fixtureParams(fx), options);
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
