// Round half to even: ONNX QuantizeLinear's rounding, and the engine's quantizers'
// (std::nearbyint in the default rounding mode).

export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
