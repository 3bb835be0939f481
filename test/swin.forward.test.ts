// The native Swin forward (stage 1, docs/swin.md) against torchvision's SwinTransformer:
// fixtures from scripts/fixtures/swin_fixture.py hold torchvision's float64 outputs of the
// patch embedding, every block, every patch merging, the pooled features and the logits,
// for a 32×32 model with shifted windows, a padded one (a window that does not tile the
// grid, an odd grid at a merge, a last stage smaller than its window) and a non-square one
// (the shift switched off along one axis only). Every tensor is
// compared, for the fast kernels and for the scalar reference kernels; then the errors a
// user can make (bad configs, wrong weights, bad inputs) must be clear errors.

import * as fs from 'fs';
import * as path from 'path';
import { createSwin, completeSwinConfig, swinParamSpecs } from '../lib/swin';
import { SpdfqError } from '../lib/errors';
import { relError } from './helpers/compare';
import { listSwinFixtures, loadSwinFixture, swinFixtureWeights, SWIN_FIXTURE_DIR } from './helpers/swin-fixtures';

// The engine fixtures' bar: max |error| ≤ 1e-4 of each tensor's largest magnitude.
// torchvision's own float32 forward sits at ~5e-7 of its float64 result on these fixtures
// (their JSON `torchvisionFloat32RelError`), so 1e-4 leaves room for summation order only.
const TOL = 1e-4;

const fixtures = listSwinFixtures();

test('the fixtures the issue asks for are present, with the ONNX export', () => {
  expect(fixtures).toEqual(expect.arrayContaining(['swin_small', 'swin_pad', 'swin_rect']));
  const fx = loadSwinFixture('swin_small');
  expect(fx.onnx?.opset).toBe(17);
  expect(fs.existsSync(path.join(SWIN_FIXTURE_DIR, fx.onnx!.file))).toBe(true);
});

describe.each(fixtures)('fixture %s', (name) => {
  const fx = loadSwinFixture(name);
  // The forward's tensors (the backward's, `grad.*`, are test/swin.backward.test.ts's).
  const compared = [...fx.tensors.keys()].filter((k) => k !== 'input' && !k.startsWith('param.') && !k.startsWith('grad.'));

  test('names every intermediate the issue asks for', () => {
    const c = completeSwinConfig(fx.config);
    const want = ['patch_embed', 'pooled', 'logits'];
    c.depths.forEach((d, s) => {
      for (let i = 0; i < d; i++) want.push(`block.${s}.${i}`);
      if (s + 1 < c.depths.length) want.push(`merge.${s}`);
    });
    expect(compared.sort()).toEqual(want.sort());
  });

  test('the native parameter layout is torchvision state_dict order', () => {
    const specs = swinParamSpecs(completeSwinConfig(fx.config));
    const params = [...fx.tensors.entries()].filter(([k]) => k.startsWith('param.'));
    expect(specs.map((s) => s.name)).toEqual(params.map(([k]) => k.slice('param.'.length)));
    expect(specs.map((s) => s.shape)).toEqual(params.map(([, t]) => t.shape));
  });

  describe.each([
    ['fast', { threads: 2 }],
    ['reference', { threads: 1, reference: true }],
  ] as const)('%s kernels', (_label, options) => {
    test('every intermediate and the logits match PyTorch', async () => {
      const model = createSwin(fx.config, swinFixtureWeights(fx), options);
      const logits = await model.forward(fx.tensors.get('input')!.data, fx.batch);
      const errors: Record<string, number> = {};
      for (const key of compared) {
        const ref = fx.tensors.get(key)!;
        const got = key === 'logits' ? { shape: ref.shape, data: logits } : await model.output(key);
        expect({ key, shape: got.shape }).toEqual({ key, shape: ref.shape });
        errors[key] = relError(got.data, ref.data);
      }
      // The measured errors, for the record (docs/swin.md quotes them).
      console.log(`${name} ${_label}: ${Object.entries(errors).map(([k, e]) => `${k} ${e.toExponential(1)}`).join(', ')}`);
      const over = Object.entries(errors).filter(([, e]) => !(e <= TOL));
      expect(over).toEqual([]);
      await model.dispose();
    });
  });
});

describe('errors are clear, not crashes', () => {
  const fx = loadSwinFixture('swin_small');
  const weights = swinFixtureWeights(fx);

  function configError(patch: Record<string, unknown>, message: RegExp): void {
    let err: unknown;
    try {
      completeSwinConfig({ ...fx.config, ...patch } as never);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SpdfqError);
    expect((err as SpdfqError).code).toBe('E_CONFIG');
    expect((err as SpdfqError).message).toMatch(message);
  }

  test('configs torchvision cannot build, or this engine refuses, name the field', () => {
    configError({ patchSize: 3 }, /'patchSize': expected a divisor of the image size 32x32.*received 3/);
    configError({ numHeads: [2] }, /'numHeads': expected one entry per stage \(2\), received \[2\]/);
    configError({ numHeads: [3, 4] }, /'numHeads\[0\]': expected a divisor of stage 0's width 32.*received 3/);
    configError({ windowSize: [4, 0] }, /'windowSize\[1\]': expected a positive integer, received 0/);
    configError({ depths: [] }, /'depths': expected a non-empty array/);
    configError({ mlpRatio: -1 }, /'mlpRatio': expected a positive finite number, received -1/);
    configError({ activation: 'tanh' }, /'activation': expected one of 'gelu'/);
  });

  test('the native side re-checks a config that skipped the TypeScript layer', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const addon = require('../lib/native').nativeAddon();
    const c = completeSwinConfig(fx.config);
    expect(() => addon.swinParamInfo({ ...c, numHeads: [3, 4] })).toThrow(/numHeads\[0\] = 3 must divide the stage width 32/);
    expect(() => addon.swinParamInfo({ ...c, patchSize: 5 })).toThrow(/patchSize 5 must divide the image size 32x32/);
    expect(() => addon.swinParamInfo({ ...c, windowSize: [4] })).toThrow(/windowSize: expected \[height, width\]/);
    expect(() => new addon.SwinModel(c, new Float32Array(3), 1)).toThrow(/params: expected \d+ floats, received 3/);
  });

  test('a window that does not tile the grid is padded as torchvision pads (not refused)', () => {
    // 16×16 tokens, window 5: padded to 20×20 as in shifted_window_attention; the padded
    // fixture checks the numbers, this checks the config is accepted.
    expect(() => completeSwinConfig({ ...fx.config, windowSize: [5, 5] })).not.toThrow();
    expect(swinParamSpecs(completeSwinConfig({ ...fx.config, windowSize: [5, 5] })).find((s) =>
      s.name === 'features.1.0.attn.relative_position_bias_table')!.shape).toEqual([81, 2]);
  });

  test('a wrong, missing or extra weight names it with its expected shape', () => {
    const wrong = new Map(weights);
    wrong.set('features.1.0.attn.qkv.weight', new Float32Array(96 * 31));
    expect(() => createSwin(fx.config, wrong, { threads: 1 })).toThrow(
      /weight 'features.1.0.attn.qkv.weight' \[96, 32\]: expected 3072 floats, received 2976/);
    const table = new Map(weights);
    table.set('features.3.1.attn.relative_position_bias_table', new Float32Array(49 * 2));
    expect(() => createSwin(fx.config, table, { threads: 1 })).toThrow(/\[49, 4\]: expected 196 floats, received 98/);
    const missing = new Map(weights);
    missing.delete('head.bias');
    expect(() => createSwin(fx.config, missing, { threads: 1 })).toThrow(/missing weights for this Swin config: head.bias/);
    const extra = new Map(weights);
    extra.set('features.5.0.norm1.weight', new Float32Array(4));
    expect(() => createSwin(fx.config, extra, { threads: 1 })).toThrow(/not used by this Swin config.*features.5.0.norm1.weight/);
    const typed = new Map<string, unknown>(weights);
    typed.set('head.bias', [1, 2, 3]);
    expect(() => createSwin(fx.config, typed as never, { threads: 1 })).toThrow(/'head.bias' \[10\]: expected a Float32Array/);
  });

  test('bad inputs, unknown outputs and a disposed model are coded errors', async () => {
    const model = createSwin(fx.config, weights, { threads: 1 });
    expect(() => model.forward(new Float32Array(10), 2)).toThrow(/images: expected a Float32Array of 6144 floats/);
    expect(() => model.forward(fx.tensors.get('input')!.data, 0)).toThrow(/batch: expected an integer/);
    await expect(model.output('logits')).rejects.toMatchObject({ code: 'E_STATE' });
    await model.forward(fx.tensors.get('input')!.data, fx.batch);
    await expect(model.output('block.2.0')).rejects.toMatchObject({
      code: 'E_CONFIG', message: expect.stringMatching(/unknown Swin output 'block.2.0'.*2 stages/) });
    await expect(model.output('merge.1')).rejects.toMatchObject({ code: 'E_CONFIG' });
    await model.dispose();
    await expect(model.forward(fx.tensors.get('input')!.data, fx.batch)).rejects.toMatchObject({
      code: 'E_STATE', message: expect.stringMatching(/disposed/) });
  });
});
