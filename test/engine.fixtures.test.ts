// The native engine against PyTorch (float64) reference fixtures written by
// scripts/fixtures/make_engine_fixtures.py: logits, both taps, the input gradient (with
// and without injected tap gradients) and every weight gradient, for the fast kernels
// and for the scalar reference kernels.

import { createVit } from '../lib/vit';
import { fixtureParams, listEngineFixtures, loadEngineFixture, EngineFixture } from './helpers/fixtures';
import { expectClose } from './helpers/compare';

// The bar: relative error ≤ 1e-4 of each tensor's scale.
const TOL = 1e-4;

function tensor(fx: EngineFixture, name: string): Float32Array {
  const t = fx.tensors.get(name);
  if (!t) throw new Error(`fixture ${fx.name} lacks tensor ${name}`);
  return t.data;
}

const fixtures = listEngineFixtures();

test('there are at least the three configurations the issue asks for', () => {
  expect(fixtures).toEqual(expect.arrayContaining(['deit_cls', 'deit_distilled', 'postnorm_mean']));
});

describe.each(fixtures)('fixture %s', (name) => {
  const fx = loadEngineFixture(name);
  const depth = fx.config.depth;

  describe.each([
    ['fast', { threads: 2 }],
    ['reference', { threads: 1, reference: true }],
  ] as const)('%s kernels', (_label, options) => {
    test('forward: logits, attention probabilities and A·V taps', async () => {
      const model = await createVit(fx.config, fixtureParams(fx), options);
      const out = await model.forward(tensor(fx, 'input'), fx.batch, { attention: true, attentionValues: true });
      expectClose('logits', out.logits, tensor(fx, 'logits'), TOL);
      for (let l = 0; l < depth; l++) {
        expectClose(`attn.${l}`, out.attention![l], tensor(fx, `attn.${l}`), TOL);
        expectClose(`av.${l}`, out.attentionValues![l], tensor(fx, `av.${l}`), TOL);
      }
      await model.dispose();
    });

    test('backward: input gradient and every weight gradient, with tap gradients injected', async () => {
      const model = await createVit(fx.config, fixtureParams(fx), options);
      await model.forward(tensor(fx, 'input'), fx.batch);
      const res = await model.backward(tensor(fx, 'grad_in.logits'), {
        tapAttention: Array.from({ length: depth }, (_, l) => tensor(fx, `grad_in.attn.${l}`)),
        tapAttentionValues: Array.from({ length: depth }, (_, l) => tensor(fx, `grad_in.av.${l}`)),
        weightGrads: true,
      });
      expectClose('grad.input', res.inputGrad, tensor(fx, 'grad.input'), TOL);
      for (const spec of model.paramSpecs) {
        expectClose(`grad.param.${spec.name}`, res.weightGrads!.get(spec.name)!, tensor(fx, `grad.param.${spec.name}`), TOL);
      }
      await model.dispose();
    });

    test('backward without taps or weight gradients (the synthesis path)', async () => {
      const model = await createVit(fx.config, fixtureParams(fx), options);
      await model.forward(tensor(fx, 'input'), fx.batch);
      const res = await model.backward(tensor(fx, 'grad_in.logits'));
      expect(res.weightGrads).toBeUndefined();
      expectClose('grad_logits_only.input', res.inputGrad, tensor(fx, 'grad_logits_only.input'), TOL);
      await model.dispose();
    });
  });
});
