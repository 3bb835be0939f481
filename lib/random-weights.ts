// Deterministic random weights for a parameter layout, with the initial scales of timm's
// ViT and torchvision's Swin (both: trunc_normal_(std=0.02) for Linear weights, position
// embeddings and relative-position bias tables; zero biases; LayerNorm weight 1). For
// benchmarks, tests and the start of training.

export interface NamedShape {
  name: string;
  shape: readonly number[];
}

/** Weights by name: 1 for LayerNorm weights (the only 1-D `.weight`s of both families),
 *  0 for biases, 0.02 × N(0, 1) otherwise. The same seed gives the same weights. */
export function randomNamedWeights(specs: readonly NamedShape[], seed: number): Map<string, Float32Array> {
  let s = seed >>> 0 || 1;
  const uniform = () => {
    // xorshift32: fast, deterministic, good enough for weight noise
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(uniform() + 1e-12)) * Math.cos(2 * Math.PI * uniform());
  const out = new Map<string, Float32Array>();
  for (const spec of specs) {
    const a = new Float32Array(spec.shape.reduce((n, d) => n * d, 1));
    const isNormWeight = spec.shape.length === 1 && spec.name.endsWith('.weight');
    const isBias = spec.name.endsWith('.bias');
    for (let i = 0; i < a.length; i++) a[i] = isNormWeight ? 1 : isBias ? 0 : 0.02 * normal();
    out.set(spec.name, a);
  }
  return out;
}
