// Tensor comparison for tests: the error relative to the reference's scale, so one
// tolerance fits tensors of any magnitude (as in llm.c's per-tensor checks).

/** max |a − b| / max |b|; 0 when both are all zeros. */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let maxDiff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= maxDiff)) maxDiff = Number.isNaN(d) ? Infinity : d;
    scale = Math.max(scale, Math.abs(b[i]));
  }
  if (scale === 0) return maxDiff;
  return maxDiff / scale;
}

/** Asserts relError ≤ tol with a message naming the tensor. */
export function expectClose(name: string, actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number): void {
  const err = relError(actual, expected);
  if (!(err <= tol)) {
    throw new Error(`${name}: relative error ${err.toExponential(3)} exceeds ${tol.toExponential(1)}`);
  }
}
