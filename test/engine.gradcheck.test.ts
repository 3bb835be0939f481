// Central finite differences against the engine's analytic backward: the gradient of a
// scalar S = Σ logits·G + Σ_l Σ attn_l·Ga_l + Σ_l Σ av_l·Gv_l with respect to sampled
// input pixels and sampled coordinates of every parameter tensor (so every layer's
// backward, and both tap-gradient paths, is exercised), on tiny models of every kind.

import { createVit, VitModel } from '../lib/vit';
import { completeVitConfig, shapeSize, VitConfigInput, vitParamSpecs } from '../lib/vit-config';
import { randn, rng } from './helpers/random';
import { agree, rmsOf, sampledInputGradient, STEP } from './helpers/finite-differences';


const CONFIGS: Record<string, VitConfigInput> = {
  prenorm_cls_dist_tanh: {
    imageHeight: 8, imageWidth: 12, channels: 2, patchSize: 4, embedDim: 12, depth: 2, numHeads: 3, mlpDim: 20,
    classToken: true, distToken: true, activation: 'gelu-tanh', numClasses: 4, layerNormEps: 1e-5,
  },
  postnorm_mean: {
    imageSize: 8, channels: 1, patchSize: 2, embedDim: 8, depth: 2, numHeads: 2, mlpDim: 16, classToken: false,
    pooling: 'mean', normPlacement: 'post', numClasses: 3, qkvBias: false,
  },
  prenorm_mean_fcnorm: {
    imageSize: 8, channels: 3, patchSize: 4, embedDim: 8, depth: 1, numHeads: 2, mlpDim: 12, classToken: true,
    pooling: 'mean', finalNorm: 'pooled', numClasses: 5,
  },
  // vit-pytorch: LayerNorms around the patch Linear, mean over every token; SiLU
  vitpytorch_meanall_silu: {
    imageSize: 8, channels: 2, patchSize: 4, embedDim: 8, depth: 2, numHeads: 2, mlpDim: 12, qkvBias: false,
    patchInputNorm: true, patchOutputNorm: true, pooling: 'mean-all', finalNorm: 'tokens', activation: 'silu', numClasses: 3,
  },
  // CLIP: LayerNorm on the embedded tokens, QuickGELU, fc_norm on the class token
  clip_quickgelu: {
    imageSize: 8, channels: 3, patchSize: 4, embedDim: 8, depth: 2, numHeads: 2, mlpDim: 16, embedNorm: true,
    finalNorm: 'pooled', activation: 'quick-gelu', numClasses: 4,
  },
  // nn.TransformerEncoder defaults: post-norm, ReLU
  postnorm_relu: {
    imageSize: 8, channels: 1, patchSize: 4, embedDim: 8, depth: 2, numHeads: 2, mlpDim: 16, normPlacement: 'post',
    activation: 'relu', numClasses: 3,
  },
};

function randomWeights(config: VitConfigInput, seed: number): Map<string, Float32Array> {
  const full = completeVitConfig(config);
  const r = rng(seed);
  const out = new Map<string, Float32Array>();
  for (const s of vitParamSpecs(full)) {
    const n = shapeSize(s.shape);
    const fanIn = s.shape.length > 1 ? shapeSize(s.shape.slice(1)) : 1;
    const w = randn(n, r, s.shape.length > 1 ? 1.2 / Math.sqrt(fanIn) : 0.3);
    if (/norm[^.]*\.weight$/.test(s.name)) for (let i = 0; i < n; i++) w[i] += 1;
    out.set(s.name, w);
  }
  return out;
}

interface Probe {
  G: Float32Array;
  Ga: Float32Array[];
  Gv: Float32Array[];
}

async function objective(model: VitModel, images: Float32Array, batch: number, p: Probe): Promise<number> {
  const out = await model.forward(images, batch, { attention: true, attentionValues: true });
  let s = 0;
  for (let i = 0; i < out.logits.length; i++) s += out.logits[i] * p.G[i];
  out.attention!.forEach((a, l) => a.forEach((v, i) => (s += v * p.Ga[l][i])));
  out.attentionValues!.forEach((a, l) => a.forEach((v, i) => (s += v * p.Gv[l][i])));
  return s;
}

describe.each(Object.entries(CONFIGS))('%s', (_name, config) => {
  const full = completeVitConfig(config);
  const batch = 2;
  const r = rng(7);
  const images = randn(batch * full.channels * full.imageHeight * full.imageWidth, r);
  const N = (full.classToken ? 1 : 0) + (full.distToken ? 1 : 0) + (full.imageHeight / full.patchSize) * (full.imageWidth / full.patchSize);
  const probe: Probe = {
    G: randn(batch * full.numClasses, r),
    Ga: Array.from({ length: full.depth }, () => randn(batch * full.numHeads * N * N, r, 3)),
    Gv: Array.from({ length: full.depth }, () => randn(batch * N * full.embedDim, r)),
  };

  test('input gradient and every parameter tensor agree with central differences', async () => {
    const weights = randomWeights(config, 11);
    const model = await createVit(config, weights, { threads: 1, reference: true });
    await model.forward(images, batch);
    const res = await model.backward(probe.G, { tapAttention: probe.Ga, tapAttentionValues: probe.Gv, weightGrads: true });
    const failures: string[] = [];

    // Input pixels.
    failures.push(...(await sampledInputGradient((x) => objective(model, x, batch, probe), images, res.inputGrad, r)));
    // Two sampled coordinates of every parameter tensor.
    for (const spec of model.paramSpecs) {
      const grad = res.weightGrads!.get(spec.name)!;
      const rms = rmsOf(grad);
      for (let k = 0; k < 2; k++) {
        const i = Math.floor(r() * grad.length);
        const w = new Map(weights);
        const t = weights.get(spec.name)!.slice();
        w.set(spec.name, t);
        t[i] += STEP;
        await model.setWeights(w);
        const up = await objective(model, images, batch, probe);
        t[i] -= 2 * STEP;
        await model.setWeights(w);
        const down = await objective(model, images, batch, probe);
        const fd = (up - down) / (2 * STEP);
        if (!agree(fd, grad[i], rms)) failures.push(`${spec.name}[${i}]: fd ${fd} vs ${grad[i]}`);
      }
    }
    await model.dispose();
    expect(failures).toEqual([]);
  });

  test('each tap gradient alone matches central differences on the input', async () => {
    // Isolate the tap paths: S = Σ attn_l·Ga_l (then Σ av_l·Gv_l), no logits term.
    const weights = randomWeights(config, 12);
    const model = await createVit(config, weights, { threads: 1, reference: true });
    const zeroG = new Float32Array(probe.G.length);
    for (const which of ['attention', 'values'] as const) {
      const p: Probe = {
        G: zeroG,
        Ga: which === 'attention' ? probe.Ga : probe.Ga.map((a) => new Float32Array(a.length)),
        Gv: which === 'values' ? probe.Gv : probe.Gv.map((a) => new Float32Array(a.length)),
      };
      await model.forward(images, batch);
      const res = await model.backward(zeroG, { tapAttention: p.Ga, tapAttentionValues: p.Gv });
      expect(rmsOf(res.inputGrad)).toBeGreaterThan(0);
      expect({ which, failures: await sampledInputGradient((x) => objective(model, x, batch, p), images, res.inputGrad, r, 5) }).toEqual({ which, failures: [] });
    }
    await model.dispose();
  });
});
