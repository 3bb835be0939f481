// Central finite differences in float32, shared by the engine's and the Swin's gradient
// checks. Step 3e-3 balances truncation (O(h²)) against rounding (O(ε/h)); a sampled
// derivative must agree to 2% of the larger of |analytic| and the tensor's RMS gradient.

export const STEP = 3e-3;
export const REL_TOL = 2e-2;

export const rmsOf = (a: Float32Array): number => Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);

export function agree(fd: number, an: number, rms: number): boolean {
  return Math.abs(fd - an) <= REL_TOL * Math.max(Math.abs(an), rms) + 1e-6;
}

/** Compares `grad` (d objective / d images) with central differences of `objective` at
 *  `samples` pixels drawn by `r`; returns one line per disagreement. */
export async function sampledInputGradient(objective: (x: Float32Array) => Promise<number>, images: Float32Array, grad: Float32Array, r: () => number, samples = 6): Promise<string[]> {
  const failures: string[] = [];
  const rms = rmsOf(grad);
  for (let k = 0; k < samples; k++) {
    const i = Math.floor(r() * images.length);
    const x = images.slice();
    x[i] += STEP;
    const up = await objective(x);
    x[i] -= 2 * STEP;
    const down = await objective(x);
    const fd = (up - down) / (2 * STEP);
    if (!agree(fd, grad[i], rms)) failures.push(`input[${i}]: fd ${fd} vs ${grad[i]}`);
  }
  return failures;
}
