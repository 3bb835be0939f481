/** @jest-environment ./test/helpers/shared-realm-environment.js */
// fp32 export keeps the original graph and replaces the weights: onnxruntime runs the
// written file and computes what a clean graph with the same new weights computes; the
// file imports back to exactly the new weights; names, inputs, outputs and every node
// survive. (The comparison with our own engine's forward is in onnx-forward.test.ts.)

import * as fs from 'fs';
import * as path from 'path';
import { SpdfqError } from '../lib/errors';
import { buildVitOnnx } from '../lib/onnx/build-vit';
import { exportFp32, exportFp32Bytes } from '../lib/onnx/export-fp32';
import { importBytes, importOnnx, ImportedModel } from '../lib/onnx/import-onnx';
import { onnx } from '../lib/onnx/proto';
import { fixture, listFixtures, LOGIT_TOLERANCE, ortLogits, randomImages, relativeError, seededValues, tmpDir } from './fixtures/onnx/helpers';

/** New weights: the old ones scaled and shifted by deterministic noise. */
function perturbed(m: ImportedModel, seed: number): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  let k = 0;
  for (const [name, w] of m.weights) {
    const noise = seededValues(w.length, seed * 7919 + k++, 0.05);
    out.set(name, w.map((v, i) => 0.9 * v + noise[i]));
  }
  return out;
}

function graphSummary(bytes: Uint8Array) {
  const m = onnx.ModelProto.decode(bytes);
  const g = m.graph as onnx.GraphProto;
  return {
    nodes: g.node.map((n) => `${n.name}|${n.opType}|${n.domain}|${(n.input ?? []).join(',')}|${(n.output ?? []).join(',')}`),
    initializers: g.initializer.map((t) => `${t.name}|${(t.dims ?? []).join('x')}|${t.dataType}`),
    inputs: g.input.map((v) => JSON.stringify(onnx.ValueInfoProto.toObject(v as onnx.ValueInfoProto))),
    outputs: g.output.map((v) => JSON.stringify(onnx.ValueInfoProto.toObject(v as onnx.ValueInfoProto))),
    functions: m.functions.map((f) => f.name),
    opsets: m.opsetImport.map((o) => `${o.domain}:${o.version}`),
    producer: m.producerName,
  };
}

describe.each(listFixtures().map((f) => [f.name, f.path]))('%s', (_name, file) => {
  test('export with new weights: ORT runs it, same logits as a clean graph, re-imports exactly, graph kept', async () => {
    const m = await importOnnx(file);
    const weights = perturbed(m, 3);
    const out = path.join(tmpDir('export'), 'model.onnx');
    await exportFp32(m, weights, out);
    const written = fs.readFileSync(out);

    const batch = 2;
    const images = randomImages(m.config, batch, 8);
    const theirs = await ortLogits(out, m.inputName, m.outputName, images, m.config, batch);
    const clean = await ortLogits(buildVitOnnx(m.config, weights), 'input', 'logits', images, m.config, batch);
    expect(relativeError(theirs, clean)).toBeLessThan(LOGIT_TOLERANCE);
    const before = await ortLogits(file, m.inputName, m.outputName, images, m.config, batch);
    expect(relativeError(before, theirs)).toBeGreaterThan(1e-3); // the weights did change

    const back = await importOnnx(out);
    expect(back.config).toEqual(m.config);
    expect(back.sourceNames).toEqual(m.sourceNames);
    for (const [name, w] of weights) expect(back.weights.get(name)).toEqual(w);

    const a = graphSummary(m.bytes);
    const b = graphSummary(written);
    expect(b.nodes).toEqual(a.nodes);
    expect(b.inputs).toEqual(a.inputs);
    expect(b.outputs).toEqual(a.outputs);
    expect(b.functions).toEqual(a.functions);
    expect(b.opsets).toEqual(a.opsets);
    expect(b.producer).toEqual(a.producer);
    expect(b.initializers).toEqual(a.initializers);
  });
});

describe('export details', () => {
  test('external data is inlined into the written file', async () => {
    const m = await importOnnx(fixture('external/model').path);
    const bytes = exportFp32Bytes(m, m.weights);
    const written = onnx.ModelProto.decode(bytes);
    expect(written.graph?.initializer?.every((t) => t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL)).toBe(true);
    const back = importBytes(bytes, null);
    for (const [name, w] of m.weights) expect(back.weights.get(name)).toEqual(w);
  });

  test('unchanged weights give back the original initializers byte for byte', async () => {
    const m = await importOnnx(fixture('hf_vit_op14').path);
    const a = onnx.ModelProto.decode(m.bytes).graph?.initializer ?? [];
    const b = onnx.ModelProto.decode(exportFp32Bytes(m, m.weights)).graph?.initializer ?? [];
    expect(b.map((t) => Buffer.from(t.rawData ?? []).toString('hex'))).toEqual(a.map((t) => Buffer.from(t.rawData ?? []).toString('hex')));
  });

  test('a parameter the graph does not have cannot take a nonzero value', async () => {
    // head Gemm without its bias input: head.bias is implied zero
    const original = onnx.ModelProto.decode(fs.readFileSync(fixture('timm_vit_op17').path));
    const gemm = (original.graph?.node ?? []).find((n) => n.opType === 'Gemm') as onnx.NodeProto;
    gemm.input = gemm.input.slice(0, 2);
    const m = importBytes(onnx.ModelProto.encode(original).finish(), null);
    expect(m.weights.get('head.bias')).toEqual(new Float32Array(10));
    expect(m.sourceNames.get('head.bias')).toEqual([]);
    expect(() => exportFp32Bytes(m, m.weights)).not.toThrow();
    const weights = new Map(m.weights);
    weights.set('head.bias', new Float32Array(10).fill(0.5));
    expect(() => exportFp32Bytes(m, weights)).toThrow(/cannot write 'head\.bias': the graph has no constant for element 0/);
  });

  test('missing or mis-sized weights are named', async () => {
    const m = await importOnnx(fixture('timm_vit_op17').path);
    const weights = new Map(m.weights);
    weights.set('blocks.1.mlp.fc2.weight', new Float32Array(5));
    expect(() => exportFp32Bytes(m, weights)).toThrow(SpdfqError);
    expect(() => exportFp32Bytes(m, weights)).toThrow(/'blocks\.1\.mlp\.fc2\.weight' \[32, 64\] must be a Float32Array of 2048 values, received 5/);
  });
});
