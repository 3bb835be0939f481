/** @jest-environment ./test/helpers/shared-realm-environment.js */
// Recognition of every exported fixture (no engine needed): the recognized config is the
// exported one, parameter source names are kept, and the imported weights reproduce
// onnxruntime's logits when written back as a clean graph (build-vit.ts).

import { importOnnx } from '../lib/onnx/import-onnx';
import { buildVitOnnx } from '../lib/onnx/build-vit';
import {
  Fixture,
  LOGIT_TOLERANCE,
  listFixtures,
  normalizeConfig,
  ortLogits,
  randomImages,
  referenceInput,
  relativeError,
} from './fixtures/onnx/helpers';

const fixtures = listFixtures();

test('the fixture set covers every family and opset of issue #3', () => {
  const families = new Set(fixtures.map((f) => f.meta.family));
  expect([...families].sort()).toEqual(['huggingface', 'timm', 'torchvision']);
  const opsets = new Set(fixtures.map((f) => f.meta.opset));
  for (const o of [13, 14, 16, 17, 18, 20]) expect(opsets).toContain(o);
  expect(fixtures.length).toBeGreaterThanOrEqual(20);
});

describe.each(fixtures.map((f) => [f.name, f] as [string, Fixture]))('%s', (_name, f) => {
  test('recognized config, family, opset and names equal the export', async () => {
    const m = await importOnnx(f.path);
    expect(normalizeConfig(m.config)).toEqual(normalizeConfig(f.meta.config));
    expect(m.family).toBe(f.meta.family);
    expect(m.opset).toBe(f.meta.opset);
    expect(m.inputName).toBe(f.meta.inputName);
    expect(m.outputName).toBe(f.meta.outputName);
    expect(typeof m.inputDims[0]).toBe('string'); // dynamic batch
  });

  test('onnxruntime reproduces the PyTorch logits (the export itself is faithful)', async () => {
    const c = f.meta.config;
    const x = referenceInput(c, f.meta.referenceBatch);
    const y = await ortLogits(f.path, f.meta.inputName, f.meta.outputName, x, c, f.meta.referenceBatch);
    expect(relativeError(f.meta.torchLogits, y)).toBeLessThan(LOGIT_TOLERANCE);
  });

  test('imported weights give onnxruntime’s logits (clean rebuilt graph vs original)', async () => {
    const m = await importOnnx(f.path);
    const batch = 3;
    const x = randomImages(m.config, batch, 17);
    const original = await ortLogits(f.path, m.inputName, m.outputName, x, m.config, batch);
    const rebuilt = await ortLogits(buildVitOnnx(m.config, m.weights, { opset: 17 }), 'input', 'logits', x, m.config, batch);
    expect(relativeError(original, rebuilt)).toBeLessThan(LOGIT_TOLERANCE);
  });
});

describe('parameter names as in the source model', () => {
  const byName = (name: string) => fixtures.find((f) => f.name === name) as Fixture;

  test('timm: biases keep module names, transposed weights keep the exporter’s', async () => {
    const m = await importOnnx(byName('timm_vit_op17').path);
    expect(m.sourceNames.get('blocks.0.attn.qkv.bias')).toEqual(['blocks.0.attn.qkv.bias']);
    expect(m.sourceNames.get('pos_embed')).toEqual(['pos_embed']);
    expect(m.sourceNames.get('blocks.1.norm2.weight')).toEqual(['blocks.1.norm2.weight']);
    expect(m.sourceNames.get('blocks.0.attn.qkv.weight')?.[0]).toMatch(/^onnx::MatMul_/);
    expect(m.sourceNames.get('head.weight')).toEqual(['head.weight']);
  });

  test('HuggingFace: qkv is fused from query, key and value in that order', async () => {
    const m = await importOnnx(byName('hf_vit_op17').path);
    expect(m.sourceNames.get('blocks.1.attn.qkv.bias')).toEqual([
      'vit.encoder.layer.1.attention.attention.query.bias',
      'vit.encoder.layer.1.attention.attention.key.bias',
      'vit.encoder.layer.1.attention.attention.value.bias',
    ]);
    expect(m.sourceNames.get('cls_token')).toEqual(['vit.embeddings.cls_token']);
    expect(m.sourceNames.get('norm.weight')).toEqual(['vit.layernorm.weight']);
    expect(m.sourceNames.get('head.bias')).toEqual(['classifier.bias']);
    expect(m.sourceNames.get('blocks.0.attn.qkv.weight')).toHaveLength(3);
  });

  test('torchvision: in_proj and class_token', async () => {
    const m = await importOnnx(byName('torchvision_vit_op17').path);
    expect(m.sourceNames.get('blocks.0.attn.qkv.bias')).toEqual(['encoder.layers.encoder_layer_0.self_attention.in_proj_bias']);
    expect(m.sourceNames.get('cls_token')).toEqual(['class_token']);
    expect(m.sourceNames.get('pos_embed')).toEqual(['encoder.pos_embedding']);
    expect(m.sourceNames.get('norm.weight')).toEqual(['encoder.ln.weight']);
  });

  test('DeiT distilled: head and head_dist by the token they read', async () => {
    const m = await importOnnx(byName('deit_distilled_op13').path);
    expect(m.sourceNames.get('head.weight')).toEqual(['head.weight']);
    expect(m.sourceNames.get('head_dist.weight')).toEqual(['head_dist.weight']);
    expect(m.sourceNames.get('dist_token')).toEqual(['dist_token']);
  });

  test('every parameter has a source unless the graph implies it', async () => {
    for (const f of fixtures) {
      const m = await importOnnx(f.path);
      for (const [name, b] of m.bindings) {
        if (b.parts.length === 0) continue;
        expect(m.sourceNames.get(name)?.length).toBeGreaterThan(0);
      }
    }
  });
});

test('graph forms are reported as exported', async () => {
  const forms = async (name: string) => (await importOnnx(fixtures.find((f) => f.name === name)?.path as string)).forms;
  expect(await forms('timm_vit_op13_gather')).toEqual({ layerNorm: 'decomposed', gelu: 'decomposed', projections: 'fused qkv' });
  expect(await forms('timm_vit_op20_gelu')).toEqual({ layerNorm: 'op', gelu: 'op', projections: 'fused qkv' });
  expect(await forms('hf_vit_op14')).toEqual({ layerNorm: 'decomposed', gelu: 'decomposed', projections: 'separate q/k/v' });
});

test('a buffer imports like the file it came from', async () => {
  const f = fixtures.find((x) => x.name === 'timm_postnorm_op14') as Fixture;
  const fromFile = await importOnnx(f.path);
  const fromBuffer = await importOnnx(new Uint8Array(require('fs').readFileSync(f.path)));
  expect(fromBuffer.config).toEqual(fromFile.config);
  expect(fromBuffer.path).toBeNull();
  for (const [k, v] of fromFile.weights) expect(fromBuffer.weights.get(k)).toEqual(v);
});
