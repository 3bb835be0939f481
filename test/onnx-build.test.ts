/** @jest-environment ./test/helpers/shared-realm-environment.js */
// buildVitOnnx writes graphs that onnxruntime runs, in every form the importer must read:
// opsets 13-20, LayerNorm fused or decomposed, GELU as formula or op, q/k/v by Split,
// Slice or Gather. Each form must give the same logits, and must import back to the same
// config and bit-identical weights.

import { buildVitOnnx, BuildVitOptions } from '../lib/onnx/build-vit';
import { importBytes } from '../lib/onnx/import-onnx';
import { SpdfqError } from '../lib/errors';
import { completeVitConfig, VitConfig, VitConfigInput } from '../lib/vit-config';
import { LOGIT_TOLERANCE, ortLogits, randomImages, randomWeights, relativeError } from './fixtures/onnx/helpers';

const small: VitConfigInput = { imageSize: 16, patchSize: 4, embedDim: 24, depth: 2, numHeads: 3, mlpDim: 40, numClasses: 7 };

const architectures: [string, VitConfigInput][] = [
  ['ViT (class token)', small],
  ['DeiT distilled, no qkv bias', { ...small, distToken: true, qkvBias: false }],
  ['mean-pooled, no class token, tanh GELU', { ...small, classToken: false, pooling: 'mean', activation: 'gelu-tanh' }],
  ['ReLU, post-norm (nn.TransformerEncoder defaults)', { ...small, activation: 'relu', normPlacement: 'post' }],
  ['vit-pytorch: LayerNorm around the patch Linear, mean over all tokens, no qkv bias', { ...small, patchInputNorm: true, patchOutputNorm: true, pooling: 'mean-all', finalNorm: 'tokens', qkvBias: false }],
  ['CLIP layout: QuickGELU, LayerNorm before the blocks, fc_norm on the class token', { ...small, activation: 'quick-gelu', embedNorm: true, finalNorm: 'pooled' }],
  ['SiLU, distilled, LayerNorm on the patch projections', { ...small, activation: 'silu', distToken: true, patchOutputNorm: true }],
  ['class token + mean pooling, fc_norm', { ...small, pooling: 'mean', finalNorm: 'pooled' }],
  ['post-norm, 1 channel, 16x24 image', { ...small, normPlacement: 'post', channels: 1, imageHeight: 16, imageWidth: 24, imageSize: undefined }],
  ['eps 1e-12, one head', { ...small, layerNormEps: 1e-12, numHeads: 1 }],
];

function forms(c: VitConfig): [string, BuildVitOptions][] {
  const gelu = c.activation === 'gelu' || c.activation === 'gelu-tanh';
  const all: [string, BuildVitOptions][] = [
    ['opset 13, decomposed LN, Gather', { opset: 13, qkvSplit: 'gather' }],
    ['opset 14, decomposed LN, Split', { opset: 14, qkvSplit: 'split' }],
    ['opset 16, decomposed LN, Slice', { opset: 16, qkvSplit: 'slice' }],
    ['opset 17, LayerNormalization, Split', { opset: 17 }],
    ['opset 18, decomposed LN (ReduceMean axes input), Split num_outputs', { opset: 18, layerNorm: 'decomposed' }],
    ['opset 18, LayerNormalization, Gather', { opset: 18, qkvSplit: 'gather' }],
    ['opset 20, Gelu op', { opset: 20, gelu: 'op' }],
    [`opset 20, ${c.activation} formula`, { opset: 20, gelu: 'formula' }],
    ['opset 21, fixed batch 3', { opset: 21, batch: 3 }],
    ['opset 17, fixed batch 1 (batch index drops out of every layout)', { opset: 17, batch: 1 }],
  ];
  return all.filter(([, o]) => gelu || o.gelu !== 'op');
}

describe.each(architectures)('%s', (_label, input) => {
  const config = completeVitConfig(input);
  const weights = randomWeights(config, 3);
  const batch = 3;
  const images = randomImages(config, batch, 5);
  let reference: Float32Array;

  beforeAll(async () => {
    reference = await ortLogits(buildVitOnnx(config, weights, { opset: 17 }), 'input', 'logits', images, config, batch);
  });

  test.each(forms(config))('%s: runs in onnxruntime, same logits, imports back exactly', async (_f, options) => {
    const bytes = buildVitOnnx(config, weights, options);
    if (options.batch === 1) {
      // a batch-1 graph runs one image: compare with the first image's logits
      const one = await ortLogits(bytes, 'input', 'logits', images.subarray(0, images.length / batch), config, 1);
      expect(relativeError(reference.subarray(0, config.numClasses), one)).toBeLessThan(LOGIT_TOLERANCE);
    } else {
      const logits = await ortLogits(bytes, 'input', 'logits', images, config, batch);
      expect(relativeError(reference, logits)).toBeLessThan(LOGIT_TOLERANCE);
    }
    const m = importBytes(bytes, null);
    expect(m.config).toEqual(config);
    expect(m.opset).toBe(options.opset);
    expect(m.family).toBe('timm');
    expect(m.fixedBatch).toBe(typeof options.batch === 'number' ? options.batch : null);
    for (const [name, w] of weights) expect(m.weights.get(name)).toEqual(w);
    expect(m.sourceNames.get('blocks.1.mlp.fc1.weight')).toEqual(['blocks.1.mlp.fc1.weight']);
    const opset = options.opset as number;
    const fusedLayerNorm = options.layerNorm ? options.layerNorm === 'fused' : opset >= 17;
    const geluOp = (config.activation === 'gelu' || config.activation === 'gelu-tanh') && (options.gelu ? options.gelu === 'op' : opset >= 20);
    expect(m.forms.layerNorm).toBe(fusedLayerNorm ? 'op' : 'decomposed');
    expect(m.forms.gelu).toBe(geluOp ? 'op' : 'decomposed');
  });
});

describe('option checks', () => {
  const config = completeVitConfig(small);
  const weights = randomWeights(config, 1);
  const rejects = (options: BuildVitOptions, pattern: RegExp) => {
    expect(() => buildVitOnnx(config, weights, options)).toThrow(SpdfqError);
    expect(() => buildVitOnnx(config, weights, options)).toThrow(pattern);
  };
  test('LayerNormalization needs opset 17', () => rejects({ opset: 16, layerNorm: 'fused' }, /opset ≥ 17/));
  test('the Gelu op needs opset 20', () => rejects({ opset: 19, gelu: 'op' }, /opset ≥ 20/));
  test('the Gelu op only for GELU activations', () => {
    const relu = completeVitConfig({ ...small, activation: 'relu' });
    expect(() => buildVitOnnx(relu, randomWeights(relu, 1), { opset: 20, gelu: 'op' })).toThrow(/applies to GELU activations; the config's activation is 'relu'/);
  });
  test('an unknown GELU form', () => rejects({ gelu: 'tanh' as never }, /gelu must be 'formula' or 'op'/));
  test('opset range', () => rejects({ opset: 12 }, /opset must be an integer in \[13, 23\]/));
  test('missing or short weights name the parameter', () => {
    const bad = new Map(weights);
    bad.set('blocks.1.attn.proj.bias', new Float32Array(3));
    expect(() => buildVitOnnx(config, bad)).toThrow(/blocks\.1\.attn\.proj\.bias/);
  });
});

describe('graph hooks (used by the quantized export)', () => {
  test.each([
    ['ViT', small],
    ['DeiT distilled', { ...small, distToken: true }],
    ['post-norm, mean-pooled', { ...small, normPlacement: 'post', classToken: false, pooling: 'mean' }],
  ] as [string, VitConfigInput][])('%s: every site and weight is offered once; pass-through hooks change nothing', async (_l, input) => {
    const config = completeVitConfig(input);
    const weights = randomWeights(config, 9);
    const sites: string[] = [];
    const seen: string[] = [];
    const bytes = buildVitOnnx(config, weights, {
      hooks: {
        activation: (g, site, block, tensor) => {
          sites.push(block === undefined ? site : `${block}.${site}`);
          return g.op('Identity', [tensor]);
        },
        weight: (g, name, dims, data, channelAxis) => {
          seen.push(`${name} [${dims.join(', ')}] axis ${channelAxis}`);
          return g.floatTensor(`${name}.hooked`, dims, data);
        },
      },
    });
    const perBlock = ['qkv_in', 'q', 'k', 'v', 'probs', 'proj_in', 'fc1_in', 'fc2_in'];
    const expected = ['patch_in', ...[0, 1].flatMap((b) => perBlock.map((s) => `${b}.${s}`)), ...(config.distToken ? ['head_in', 'head_in'] : ['head_in'])];
    expect(sites).toEqual(expected);
    expect(seen).toEqual([
      'patch_embed.proj.weight [24, 3, 4, 4] axis 0',
      ...[0, 1].flatMap((b) => [`blocks.${b}.attn.qkv.weight [24, 72] axis 1`, `blocks.${b}.attn.proj.weight [24, 24] axis 1`, `blocks.${b}.mlp.fc1.weight [24, 40] axis 1`, `blocks.${b}.mlp.fc2.weight [40, 24] axis 1`]),
      'head.weight [7, 24] axis 0',
      ...(config.distToken ? ['head_dist.weight [7, 24] axis 0'] : []),
    ]);
    const images = randomImages(config, 2, 1);
    const plain = await ortLogits(buildVitOnnx(config, weights), 'input', 'logits', images, config, 2);
    const hooked = await ortLogits(bytes, 'input', 'logits', images, config, 2);
    expect(relativeError(plain, hooked)).toBe(0);
  });
});
