// Reading ONNX pieces: unaligned raw_data, the typed data fields, int64 as Long, float16,
// local functions (nested, attribute references), constant folding of shape arithmetic,
// and the layout algebra that recognizes q/k/v selections.

import { SpdfqError } from '../lib/errors';
import { inlineFunctions } from '../lib/onnx/functions';
import { OnnxGraph } from '../lib/onnx/graph';
import { full, makeLayout, reshapeLayout, selectLayout, sliceLayout, transposeLayout, describeLayout } from '../lib/onnx/layout';
import { onnx, toNumber } from '../lib/onnx/proto';
import { StaticEval } from '../lib/onnx/static-eval';
import { DataType, encodeFloats, floatToHalf, halfToFloat, readTensor } from '../lib/onnx/tensor-data';

describe('tensor data', () => {
  test('raw_data at an unaligned offset inside a decoded file', () => {
    const values = new Float32Array([1.5, -2.25, 3e-8, 65504]);
    const t = onnx.TensorProto.create({ name: 'w', dims: [2, 2], dataType: DataType.FLOAT, rawData: encodeFloats(values, DataType.FLOAT) });
    // shift the encoded bytes until raw_data sits at an offset that is not a multiple of 4
    const encoded = onnx.TensorProto.encode(t).finish();
    let unaligned = false;
    for (let shift = 1; shift < 4 && !unaligned; shift++) {
      const buffer = new Uint8Array(encoded.length + shift);
      buffer.set(encoded, shift);
      const decoded = onnx.TensorProto.decode(buffer.subarray(shift));
      if (decoded.rawData.byteOffset % 4 === 0) continue;
      unaligned = true;
      const v = readTensor(decoded, 'w');
      expect(v.dims).toEqual([2, 2]);
      expect(Array.from(v.data)).toEqual(Array.from(values));
    }
    expect(unaligned).toBe(true);
  });

  test('typed fields: float_data, double_data, int64_data (Long), int32_data for int8 and float16', () => {
    const round = (t: onnx.ITensorProto) => readTensor(onnx.TensorProto.decode(onnx.TensorProto.encode(t).finish()), 't');
    expect(Array.from(round({ dims: [3], dataType: DataType.FLOAT, floatData: [1, 2.5, -3] }).data)).toEqual([1, 2.5, -3]);
    expect(Array.from(round({ dims: [2], dataType: DataType.DOUBLE, doubleData: [0.1, 1e300] }).data)).toEqual([Math.fround(0.1), Infinity]);
    const big = round({ dims: [3], dataType: DataType.INT64, int64Data: [-1, 2 ** 40, 7] });
    expect(Array.from(big.data)).toEqual([-1, 2 ** 40, 7]);
    expect(Array.from(round({ dims: [2], dataType: DataType.INT8, int32Data: [-128, 127] }).data)).toEqual([-128, 127]);
    const half = round({ dims: [3], dataType: DataType.FLOAT16, int32Data: [floatToHalf(1), floatToHalf(-0.5), floatToHalf(65504)] });
    expect(Array.from(half.data)).toEqual([1, -0.5, 65504]);
  });

  test('int64 fields decode as Long and convert exactly', () => {
    const t = onnx.TensorProto.decode(onnx.TensorProto.encode({ dims: [2 ** 33, 1], dataType: 1 }).finish());
    expect(typeof t.dims[0]).toBe('object');
    expect(toNumber(t.dims[0])).toBe(2 ** 33);
  });

  test('float16 conversion rounds to nearest even and keeps specials', () => {
    for (const v of [0, 1, -2, 0.1, 1e-5, 65504, 6.1e-5, 5.96e-8]) expect(Math.abs(halfToFloat(floatToHalf(v)) - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -11 + 2 ** -25);
    expect(halfToFloat(floatToHalf(1e6))).toBe(Infinity);
    expect(Number.isNaN(halfToFloat(floatToHalf(NaN)))).toBe(true);
  });

  test('inconsistent lengths and absurd dims are E_ONNX errors', () => {
    expect(() => readTensor({ dims: [3], dataType: 1, rawData: new Uint8Array(8) }, 'w')).toThrow(/raw_data holds 8 bytes, expected 12/);
    expect(() => readTensor({ dims: [3], dataType: 1, floatData: [1] }, 'w')).toThrow(/float_data holds 1 values, expected 3/);
    expect(() => readTensor({ dims: [2 ** 20, 2 ** 20], dataType: 1 }, 'w')).toThrow(/implausibly large/);
    expect(() => readTensor({ dims: [-1], dataType: 1 }, 'w')).toThrow(SpdfqError);
    expect(() => readTensor({ dims: [1], dataType: 8 }, 'w')).toThrow(/string tensors are not supported/);
  });
});

describe('local functions', () => {
  const fn = (name: string, nodes: onnx.INodeProto[], inputs = ['X'], outputs = ['Y'], attribute: string[] = []): onnx.IFunctionProto => ({
    name,
    domain: 'local',
    input: inputs,
    output: outputs,
    attribute,
    node: nodes,
    opsetImport: [{ domain: '', version: 17 }],
  });

  test('nested calls are inlined with unique names and attribute references resolved', () => {
    const scaled = fn('Scaled', [
      { opType: 'Constant', output: ['c'], attribute: [{ name: 'value_float', refAttrName: 'alpha', type: onnx.AttributeProto.AttributeType.FLOAT }] },
      { opType: 'Mul', input: ['X', 'c'], output: ['Y'] },
    ], ['X'], ['Y'], ['alpha']);
    const twice = fn('Twice', [
      { opType: 'Scaled', domain: 'local', input: ['X'], output: ['t'], attribute: [{ name: 'alpha', refAttrName: 'alpha', type: 1 }] },
      { opType: 'Scaled', domain: 'local', input: ['t'], output: ['Y'], attribute: [{ name: 'alpha', refAttrName: 'alpha', type: 1 }] },
    ], ['X'], ['Y'], ['alpha']);
    const nodes = inlineFunctions(
      [
        { name: 'a', opType: 'Twice', domain: 'local', input: ['in'], output: ['mid'], attribute: [{ name: 'alpha', f: 3, type: 1 }] },
        { name: 'b', opType: 'Twice', domain: 'local', input: ['mid'], output: ['out'], attribute: [{ name: 'alpha', f: 0.5, type: 1 }] },
      ],
      [scaled, twice],
    );
    expect(nodes.map((n) => n.opType)).toEqual(['Constant', 'Mul', 'Constant', 'Mul', 'Constant', 'Mul', 'Constant', 'Mul']);
    const outputs = nodes.flatMap((n) => n.outputs);
    expect(new Set(outputs).size).toBe(outputs.length);
    expect(nodes[0].attrs.get('value_float')?.f).toBe(3);
    expect(nodes[6].attrs.get('value_float')?.f).toBe(0.5);
    expect(nodes[1].inputs[0]).toBe('in');
    expect(nodes[7].outputs[0]).toBe('out');
    expect(nodes[3].inlinedFrom).toMatch(/a > /);
  });

  test('recursion is stopped with a clear error', () => {
    const loop = fn('Loop', [{ opType: 'Loop', domain: 'local', input: ['X'], output: ['Y'] }]);
    expect(() => inlineFunctions([{ opType: 'Loop', domain: 'local', input: ['a'], output: ['b'] }], [loop])).toThrow(/nested more than 32 deep/);
  });
});

function graphOf(nodes: onnx.INodeProto[], initializers: onnx.ITensorProto[], inputDims: (number | string)[]): OnnxGraph {
  const model = onnx.ModelProto.decode(
    onnx.ModelProto.encode({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        node: nodes,
        initializer: initializers,
        input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: inputDims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } } }],
        output: [{ name: 'y', type: { tensorType: { elemType: 1 } } }],
      },
    }).finish(),
  );
  return new OnnxGraph(model, {});
}

const i64 = (name: string, values: number[], dims = [values.length]): onnx.ITensorProto => ({ name, dims, dataType: DataType.INT64, int64Data: values });

describe('static evaluation', () => {
  test('Shape → Gather → Unsqueeze → Concat → Reshape evaluates at the probe batch', () => {
    const g = graphOf(
      [
        { opType: 'Shape', input: ['x'], output: ['s'] },
        { opType: 'Gather', input: ['s', 'zero'], output: ['b'], attribute: [{ name: 'axis', i: 0, type: 2 }] },
        { opType: 'Unsqueeze', input: ['b', 'axes0'], output: ['b1'] },
        { opType: 'Concat', input: ['b1', 'rest'], output: ['shape'], attribute: [{ name: 'axis', i: 0, type: 2 }] },
        { opType: 'Reshape', input: ['x', 'shape'], output: ['r'] },
        { opType: 'Slice', input: ['r', 'start', 'end', 'axes1'], output: ['y'] },
      ],
      [i64('zero', [0], []), i64('axes0', [0]), i64('rest', [17, 3, 2, 16]), i64('start', [1]), i64('end', [2 ** 53]), i64('axes1', [2])],
      ['batch', 17, 96],
    );
    const ev = new StaticEval(g, new Map([['x', [2, 17, 96]]]));
    expect(Array.from(ev.value('shape')?.data ?? [])).toEqual([2, 17, 3, 2, 16]);
    expect(ev.shape('r')).toEqual([2, 17, 3, 2, 16]);
    expect(ev.shape('y')).toEqual([2, 17, 2, 2, 16]);
  });

  test('the runtime attention scale folds to a number', () => {
    const g = graphOf(
      [
        { opType: 'Shape', input: ['x'], output: ['s'] },
        { opType: 'Gather', input: ['s', 'last'], output: ['d'], attribute: [{ name: 'axis', i: 0, type: 2 }] },
        { opType: 'Cast', input: ['d'], output: ['df'], attribute: [{ name: 'to', i: 1, type: 2 }] },
        { opType: 'Sqrt', input: ['df'], output: ['sq'] },
        { opType: 'Reciprocal', input: ['sq'], output: ['y'] },
      ],
      [i64('last', [-1], [])],
      [2, 3, 17, 64],
    );
    const ev = new StaticEval(g, new Map([['x', [2, 3, 17, 64]]]));
    expect(ev.value('y')?.data[0]).toBe(Math.fround(0.125));
  });
});

describe('layout algebra', () => {
  // timm: qkv [B, N, 3D] → reshape [B, N, 3, H, d] → permute(2, 0, 3, 1, 4) → [1] (k)
  test('timm key selection is rows D..2D, head-major', () => {
    const B = 2, N = 5, H = 3, d = 4, D = H * d;
    const qkv = makeLayout([full('b', B), full('n', N), full('c', 3 * D)]);
    const heads = transposeLayout(reshapeLayout(qkv, [B, N, 3, H, d]), [2, 0, 3, 1, 4]);
    const k = selectLayout(heads, 0, 1, false);
    expect(describeLayout(k)).toBe('[b:2, c/4:3, n:5, c:4]');
    expect(k.offsets.c).toBe(D);
  });

  test('torchvision: view(N, B·H, d) merges batch and heads into one axis', () => {
    const B = 2, N = 5, H = 3, d = 4, D = H * d;
    const proj = makeLayout([full('n', N), full('b', B), full('c', 3 * D)]);
    const v = sliceLayout(proj, 2, 2 * D, D);
    const view = transposeLayout(reshapeLayout(v, [N, B * H, d]), [1, 0, 2]);
    expect(describeLayout(view)).toBe('[b:2·c/4:3, n:5, c:4]');
    expect(view.offsets.c).toBe(2 * D);
  });

  test('a reshape that cuts an index unevenly is refused', () => {
    const l = makeLayout([full('n', 6), full('c', 10)]);
    expect(() => reshapeLayout(l, [4, 15])).toThrow(/non-divisor/);
  });
});
