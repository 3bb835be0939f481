// `quantize --eval`: the top-1 of the full-precision and the quantized model on the
// evaluation images, printed as one line (ViT and Swin alike).

import { loadEvalSet } from '../data/eval-set';
import { evaluate, ForwardFn } from '../eval/evaluate';
import { Preprocessing, PreprocessedInput } from '../onnx/preprocess';

export async function printTop1(
  evalPath: string,
  config: PreprocessedInput & { numClasses: number },
  pre: Preprocessing,
  bits: string,
  fp: ForwardFn,
  quantized: ForwardFn,
): Promise<void> {
  const set = loadEvalSet(evalPath, config, pre);
  const f = await evaluate(fp, set, config.numClasses);
  const q = await evaluate(quantized, set, config.numClasses);
  process.stdout.write(`top-1 on ${set.count} images: full precision ${(f.top1 * 100).toFixed(2)}%, ${bits} ${(q.top1 * 100).toFixed(2)}%\n`);
}
