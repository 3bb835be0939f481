/** @jest-environment ./test/helpers/shared-realm-environment.js */
// Soundness under random graph edits: change an op type, swap inputs, change an attribute,
// rewire an input, delete a node or change a constant — with a fixed seed. Import must
// then either fail with a clean SpdfqError, or return weights that make a clean graph
// compute exactly what onnxruntime computes on the edited file. Recognition never accepts
// a graph that computes something else.

import * as fs from 'fs';
import * as ort from 'onnxruntime-node';
import { SpdfqError } from '../lib/errors';
import { buildVitOnnx } from '../lib/onnx/build-vit';
import { importBytes } from '../lib/onnx/import-onnx';
import { onnx } from '../lib/onnx/proto';
import { fixture, LOGIT_TOLERANCE, ortLogits, randomImages, relativeError, seededValues } from './fixtures/onnx/helpers';

const OPS = ['Add', 'Mul', 'Sub', 'Div', 'MatMul', 'Reshape', 'Transpose', 'Identity', 'Softmax', 'Gather', 'Slice', 'Squeeze', 'Concat', 'Sqrt', 'Erf', 'ReduceMean', 'Tanh', 'Pow', 'Relu', 'Neg'];

function mutate(bytes: Uint8Array, r: () => number): { bytes: Uint8Array; change: string } {
  const m = onnx.ModelProto.decode(bytes);
  const nodes = m.graph?.node as onnx.NodeProto[];
  const pick = <T>(a: T[]): T => a[Math.floor(r() * a.length)];
  const n = pick(nodes);
  const kind = Math.floor(r() * 6);
  let change = '';
  if (kind === 0) {
    change = `${n.name}: ${n.opType} → `;
    n.opType = pick(OPS);
    change += n.opType;
  } else if (kind === 1) {
    n.input.reverse();
    change = `${n.name}: inputs reversed`;
  } else if (kind === 2 && n.attribute.length > 0) {
    const a = pick(n.attribute);
    const ints = a.ints ?? [];
    if (ints.length > 0) ints[Math.floor(r() * ints.length)] = Math.floor(r() * 7) - 3;
    else a.i = Math.floor(r() * 7) - 3;
    a.f = r() * 4 - 2;
    change = `${n.name}: attribute ${a.name}`;
  } else if (kind === 3 && n.input.length > 0) {
    const other = pick(nodes);
    n.input[Math.floor(r() * n.input.length)] = other.output[0];
    change = `${n.name}: input from ${other.name}`;
  } else if (kind === 4) {
    nodes.splice(nodes.indexOf(n), 1);
    change = `${n.name}: deleted`;
  } else {
    const t = pick(m.graph?.initializer as onnx.TensorProto[]);
    if (t.rawData.length >= 8) {
      const view = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.length);
      if (t.dataType === 7) view.setBigInt64(0, BigInt(Math.floor(r() * 40) - 20), true);
      else view.setFloat32(0, r() * 10 - 5, true);
    }
    change = `${t.name}: first value`;
  }
  return { bytes: onnx.ModelProto.encode(m).finish(), change };
}

test.each([['timm_vit_op13_gather', 11], ['hf_vit_op14', 12], ['torchvision_vit_op17', 13]])('%s: 100 random edits', async (name, seed) => {
  const original = fs.readFileSync(fixture(name).path);
  const values = seededValues(100000, seed, 0.5);
  let k = 0;
  const r = () => values[k++ % values.length] + 0.5;
  let accepted = 0;
  for (let i = 0; i < 100; i++) {
    const { bytes, change } = mutate(original, r);
    let m;
    try {
      m = importBytes(bytes, null);
    } catch (err) {
      if (!(err instanceof SpdfqError) || /internal error/.test(err.message)) throw new Error(`${change}: ${String((err as Error).stack)}`);
      continue;
    }
    const batch = 2;
    const images = randomImages(m.config, batch, i);
    let theirs: Float32Array;
    try {
      const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
      theirs = (await session.run({ [m.inputName]: new ort.Tensor('float32', images, [batch, m.config.channels, m.config.imageHeight, m.config.imageWidth]) }))[m.outputName].data as Float32Array;
      await session.release();
    } catch {
      continue; // ORT refuses the edited file (e.g. a type error in dead shape code)
    }
    const ours = await ortLogits(buildVitOnnx(m.config, m.weights), 'input', 'logits', images, m.config, batch);
    if (!(relativeError(theirs, ours) <= LOGIT_TOLERANCE)) throw new Error(`accepted a graph that computes something else after "${change}"`);
    accepted++;
  }
  expect(accepted).toBeGreaterThan(10);
});
