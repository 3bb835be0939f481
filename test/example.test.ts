// The README's example script (examples/quantize-bundled.js) runs as a user runs it, through
// the package's public entry point, on the bundled model; its printed full-precision accuracy
// is checked against onnxruntime on the original ONNX file, and the quantized ONNX it writes
// is run in onnxruntime.

import { execFile } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { promisify } from 'util';
import { importOnnx } from '../lib/onnx/import-onnx';
import { readPreprocessing } from '../lib/onnx/preprocess';
import { loadEvalSet } from '../lib/data/eval-set';
import { evaluate } from '../lib/eval/evaluate';
import { ortForward } from '../lib/eval/ort';
import { DEFAULT_MODEL } from '../lib/run/run';

const ROOT = path.join(__dirname, '..');

test('examples/quantize-bundled.js runs and reports what onnxruntime measures', async () => {
  // The example loads the package through require('..'): the compiled dist/ must exist.
  expect(fs.existsSync(path.join(ROOT, 'dist/lib/index.js'))).toBe(true);
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'spdfq-example-'));
  const { stdout } = await promisify(execFile)(process.execPath, [path.join(ROOT, 'examples/quantize-bundled.js')], { cwd, timeout: 400_000 });
  const m = /full precision ([\d.]+)%, W4A4 ([\d.]+)% on (\d+) images/.exec(stdout);
  expect(m).not.toBeNull();
  const [fpPct, w4a4Pct, count] = [Number(m![1]), Number(m![2]), Number(m![3])];

  // Independent reference: the original ONNX file in onnxruntime on the same subset.
  const imported = await importOnnx(DEFAULT_MODEL);
  const pre = readPreprocessing(imported.path, imported.config);
  const testSet = loadEvalSet(DEFAULT_MODEL.replace(/\.onnx$/, '-test'), imported.config, pre);
  expect(count).toBe(testSet.count);
  const fpOrt = await ortForward(fs.readFileSync(DEFAULT_MODEL), imported.config);
  const fpRef = await evaluate(fpOrt.forward, testSet, imported.config.numClasses);
  await fpOrt.release();
  // Engine and onnxruntime differ by float rounding only; allow one flipped prediction.
  expect(Math.abs(fpPct / 100 - fpRef.top1)).toBeLessThanOrEqual(1 / testSet.count + 1e-9);

  // The quantized file it wrote is the model it evaluated (log√2 softmax exported as its
  // exact formula): onnxruntime's accuracy equals the printed simulation up to a few
  // predictions flipped by float rounding, and a working W4A4 model keeps most of the
  // full-precision accuracy (a broken one falls towards chance).
  const q = await ortForward(fs.readFileSync(path.join(cwd, `${path.basename(DEFAULT_MODEL, '.onnx')}-w4a4.onnx`)), imported.config);
  const qRef = await evaluate(q.forward, testSet, imported.config.numClasses);
  await q.release();
  expect(Math.abs(qRef.top1 - w4a4Pct / 100)).toBeLessThanOrEqual(5 / testSet.count + 1e-9);
  expect(w4a4Pct / 100).toBeGreaterThan(fpRef.top1 - 0.1);
}, 600_000);
