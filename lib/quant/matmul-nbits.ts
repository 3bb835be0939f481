// ONNX Runtime's com.microsoft MatMulNBits: Y = A · dequant(B)ᵀ with B [N, K] quantized in
// blocks along K, dequantized as (code − zero_point) · scale. Layout (onnxruntime's
// contrib-operator spec for MatMulNBits):
//   B            uint8 [N, k_blocks, block_size · bits / 8], codes packed low bits first along K
//   scales       float [N, k_blocks]
//   zero_points  uint8 [N, ceil(k_blocks · bits / 8)], packed the same way
// Our weight quantizers are per output channel, so every block of a row repeats that row's
// scale and zero point: the node computes exactly our grid. Signed grids (symmetric and
// TensorRT modes) are shifted by 2^(bits−1) into the unsigned codes the op stores, with the
// zero point shifted alike, which leaves (code − zero) unchanged.

import { SpdfqError } from '../errors';
import { GraphBuilder } from '../onnx/graph-builder';
import { DataType } from '../onnx/tensor-data';
import { WeightQuantizer } from '../native';

export interface MatMulNBitsOptions {
  /** Elements of K per block: a power of two ≥ 16. Default 32 (the block size ORT's own
   *  quantizer tool writes by default). Our scales are per channel, so it sets only the layout. */
  blockSize?: number;
  /** The node's accuracy_level: 0 (default) computes in float with exactly our dequantized
   *  weights; 4 lets ORT quantize A to int8 per block (faster, no longer bit-exact with
   *  the simulation). */
  accuracyLevel?: 0 | 1 | 2 | 3 | 4;
}

export const MS_DOMAIN = { name: 'com.microsoft', version: 1 };

/** Container width MatMulNBits stores a grid of `bits` bits in (it supports 2, 4 and 8). */
export function nbitsContainer(bits: number): 2 | 4 | 8 {
  return bits <= 2 ? 2 : bits <= 4 ? 4 : 8;
}

/** Packs rows of `perRow` codes of `bits` bits, low bits first, each row padded to whole bytes. */
export function packRows(codes: Int32Array, rows: number, perRow: number, bits: number): Uint8Array {
  const rowBytes = Math.ceil((perRow * bits) / 8);
  const out = new Uint8Array(rows * rowBytes);
  const mask = (1 << bits) - 1;
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < perRow; i++) {
      const bit = i * bits;
      out[r * rowBytes + (bit >> 3)] |= (codes[r * perRow + i] & mask) << (bit & 7);
    }
  }
  return out;
}

/**
 * Writes one MatMulNBits node for x · Wᵀ. `codes` are the weight's integer codes [N, K]
 * (row = output channel) as the engine's quantizer computes them; returns the output tensor.
 */
export function matMulNBits(
  g: GraphBuilder,
  name: string,
  x: string,
  codes: Int32Array,
  q: WeightQuantizer,
  N: number,
  K: number,
  options: MatMulNBitsOptions = {},
): string {
  const blockSize = options.blockSize ?? 32;
  if (!Number.isInteger(blockSize) || blockSize < 16 || (blockSize & (blockSize - 1)) !== 0) {
    throw new SpdfqError('E_CONFIG', `MatMulNBits blockSize: expected a power of two ≥ 16, received ${blockSize}`);
  }
  const accuracyLevel = options.accuracyLevel ?? 0;
  if (![0, 1, 2, 3, 4].includes(accuracyLevel)) {
    throw new SpdfqError('E_CONFIG', `MatMulNBits accuracyLevel: expected 0..4, received ${String(accuracyLevel)}`);
  }
  if (!Number.isInteger(q.bits) || q.bits < 1 || q.bits > 8) {
    throw new SpdfqError('E_CONFIG', `MatMulNBits: ${name} has ${q.bits}-bit weights; expected 1 to 8 bits (the op stores codes of 2, 4 or 8 bits)`);
  }
  const bits = nbitsContainer(q.bits);
  const shift = q.qmin < 0 ? 2 ** (bits - 1) : 0;
  if (q.qmin + shift < 0 || q.qmax + shift > 2 ** bits - 1) {
    throw new SpdfqError('E_CONFIG', `MatMulNBits: ${name} grid [${q.qmin}, ${q.qmax}] does not fit ${bits}-bit codes`);
  }
  const kBlocks = Math.ceil(K / blockSize);
  const padded = kBlocks * blockSize;
  const b = new Int32Array(N * padded);
  const zeros = new Int32Array(N * kBlocks);
  const scales = new Float32Array(N * kBlocks);
  for (let n = 0; n < N; n++) {
    const zero = q.zeros[n] + shift;
    // Padding past K holds the zero point: it dequantizes to 0.
    b.fill(zero, n * padded, (n + 1) * padded);
    for (let k = 0; k < K; k++) b[n * padded + k] = codes[n * K + k] + shift;
    zeros.fill(zero, n * kBlocks, (n + 1) * kBlocks);
    scales.fill(q.scales[n], n * kBlocks, (n + 1) * kBlocks);
  }
  const bT = g.rawTensor(`${name}.quantized`, DataType.UINT8, [N, kBlocks, (blockSize * bits) / 8], packRows(b, N, padded, bits));
  const sT = g.floatTensor(`${name}.scale`, [N, kBlocks], scales);
  const zT = g.rawTensor(`${name}.zero_point`, DataType.UINT8, [N, Math.ceil((kBlocks * bits) / 8)], packRows(zeros, N, kBlocks, bits));
  return g.op(
    'MatMulNBits',
    [x, bT, sT, zT],
    { K: { int: K }, N: { int: N }, bits: { int: bits }, block_size: { int: blockSize }, accuracy_level: { int: accuracyLevel } },
    MS_DOMAIN,
  );
}
