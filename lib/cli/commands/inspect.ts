// `spdfq-native inspect <model.onnx> [--json]`: prints the ViT architecture recognized in an
// ONNX file, or fails (exit code 1, via a thrown SpdfqError) with the node where
// recognition stopped. Needs no native engine.

import type { Argv, CommandModule } from 'yargs';
import { patchGrid, prefixTokens, tokenCount } from '../../vit-config';
import { ImportedModel, importBytes } from '../../onnx/import-onnx';
import { readOnnxSource } from '../../onnx/read-source';
import { Preprocessing, readPreprocessing } from '../../onnx/preprocess';
import { vitCost, VitCost } from '../../onnx/vit-cost';
import { describeSwin, importSwinGraph } from '../../onnx/import-swin';
import { OnnxGraph } from '../../onnx/graph';
import { decodeModel } from '../../onnx/proto';
import { looksLikeSwin } from '../../onnx/recognize-swin';
import * as path from 'path';
import { SpdfqError } from '../../errors';

const SWIN_SUPPORT = 'fp32 forward and fp32 export through the API (loadSwinOnnx, exportSwinFp32); synthesis through `synth` and synthesize() (docs/swin.md, "Stage: synthesis"); quantization on given images through `quantize` and quantize() (docs/swin.md, "Stage: quantization"); block reconstruction of every block and patch merging (docs/swin.md, "Stage: quantization"); `run` and `compare` (docs/swin.md, "Stage: run", "Stage: compare")';

/** The report for a Swin graph, or null when the bytes do not decode as one (the ViT path
 *  then reads them and reports its own errors). */
export function inspectSwin(bytes: Uint8Array, filePath: string, json: boolean): string | null {
  let graph: OnnxGraph;
  try {
    graph = new OnnxGraph(decodeModel(bytes, `'${filePath}'`), { baseDir: path.dirname(filePath) });
  } catch (err) {
    if (err instanceof SpdfqError) return null;
    throw err;
  }
  if (!looksLikeSwin(graph)) return null;
  const m = importSwinGraph(graph, filePath);
  const c = m.config;
  const params = [...m.weights.values()].reduce((s, w) => s + w.length, 0);
  if (json) {
    return `${JSON.stringify({ path: m.path, family: 'torchvision-swin', description: describeSwin(m), opset: m.opset, irVersion: m.irVersion, producer: m.producer, input: { name: m.inputName, dims: m.inputDims }, output: m.outputName, graphForms: m.forms, config: c, parameters: params, supported: SWIN_SUPPORT, sourceNames: Object.fromEntries(m.sourceNames) }, null, 2)}\n`;
  }
  const rows: [string, string][] = [
    ['model', `${m.path}  (opset ${m.opset}, IR ${m.irVersion}${m.producer ? `, ${m.producer}` : ''})`],
    ['family', `torchvision Swin Transformer V1, LayerNorm ${m.forms.layerNorm === 'op' ? 'as LayerNormalization' : 'decomposed'}, GELU ${m.forms.gelu === 'op' ? 'as Gelu op' : 'decomposed'}, pooling ${m.forms.pooling}`],
    ['input', `${m.inputName} [${m.inputDims.map((d) => d ?? '?').join(', ')}] → ${m.outputName} [batch, ${c.numClasses}]`],
    ['image', `${c.imageHeight}×${c.imageWidth}, ${c.channels} channels, patch ${c.patchSize} → ${c.imageHeight / c.patchSize}×${c.imageWidth / c.patchSize} tokens`],
    ['stages', c.depths.map((d, s) => `${d} blocks × dim ${c.embedDim * 2 ** s}, ${c.numHeads[s]} heads`).join('; ')],
    ['window', `${c.windowSize.join('×')}, shifted by half a window in odd blocks, MLP ratio ${c.mlpRatio}, qkv bias ${c.qkvBias ? 'yes' : 'no'}`],
    ['numerics', `LayerNorm eps ${c.layerNormEps.toExponential()}, activation ${c.activation}`],
    ['parameters', params.toLocaleString('en-US')],
    ['supported', SWIN_SUPPORT],
  ];
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  return rows.map(([k, v]) => `${k.padEnd(width)}${v}`).join('\n') + '\n';
}

interface InspectArgs {
  model: string;
  json: boolean;
  'image-size'?: number;
  'output-name'?: string;
  preprocess?: string;
}

export function familyLabel(m: Pick<ImportedModel, 'family' | 'config' | 'variant'>): string {
  const c = m.config;
  const library =
    m.family === 'huggingface' ? 'HuggingFace ViTForImageClassification' : m.family === 'torchvision' ? 'torchvision VisionTransformer' : c.distToken ? 'timm DeiT (distilled)' : 'timm ViT';
  // parts no library model of that family has: say the layout is only the closest one
  const custom = c.patchInputNorm || c.embedNorm || c.pooling === 'mean-all' || !['gelu', 'gelu-tanh'].includes(c.activation) || m.variant.layerScale !== 'none';
  return custom ? `custom ViT (closest library layout: ${library})` : library;
}

function si(x: number): string {
  const units: [number, string][] = [[1e9, 'G'], [1e6, 'M'], [1e3, 'k']];
  for (const [v, u] of units) if (x >= v) return `${(x / v).toPrecision(3)} ${u}`;
  return String(x);
}

function dims(d: (number | string | null)[]): string {
  return `[${d.map((x) => x ?? '?').join(', ')}]`;
}

export function inspectReport(m: ImportedModel, cost: VitCost, pre: Preprocessing): Record<string, unknown> {
  const c = m.config;
  const grid = patchGrid(c);
  return {
    path: m.path,
    family: m.family,
    description: familyLabel(m),
    opset: m.opset,
    irVersion: m.irVersion,
    producer: m.producer,
    input: { name: m.inputName, dims: m.inputDims },
    output: m.outputName,
    graphForms: m.forms,
    variant: m.variant,
    config: c,
    patches: grid.rows * grid.cols,
    prefixTokens: prefixTokens(c),
    tokens: tokenCount(c),
    parameters: cost.parameters,
    multiplyAddsPerImage: cost.multiplyAdds,
    flopsPerImage: cost.flops,
    preprocessing: pre,
    sourceNames: Object.fromEntries(m.sourceNames),
  };
}

export function inspectText(m: ImportedModel, cost: VitCost, pre: Preprocessing): string {
  const c = m.config;
  const grid = patchGrid(c);
  const prefix = [c.classToken ? 'class token' : '', c.distToken ? 'distillation token' : ''].filter((s) => s).join(' + ');
  const pooling = c.distToken ? 'class + distillation heads averaged' : { token: 'class token', mean: 'mean of the patch tokens', 'mean-all': 'mean of all tokens' }[c.pooling];
  const v = m.variant;
  const finalNorm = { tokens: 'LayerNorm on all tokens', pooled: 'LayerNorm on the pooled vector (fc_norm)', none: 'no final LayerNorm' }[c.finalNorm];
  const rows: [string, string][] = [
    ['model', `${m.path ?? '(buffer)'}  (opset ${m.opset}, IR ${m.irVersion}${m.producer ? `, ${m.producer}` : ''})`],
    ['family', `${familyLabel(m)}: ${m.forms.projections}, LayerNorm ${m.forms.layerNorm === 'op' ? 'as LayerNormalization' : m.forms.layerNorm}${c.activation.startsWith('gelu') ? `, GELU ${m.forms.gelu === 'op' ? 'as Gelu op' : 'decomposed'}` : ''}`],
    ['input', `${m.inputName} ${dims(m.inputDims)} → ${m.outputName} [batch, ${c.numClasses}]`],
    ['image', `${c.imageHeight}×${c.imageWidth}, ${c.channels} channel${c.channels === 1 ? '' : 's'}, patch ${c.patchSize} → ${grid.rows}×${grid.cols} = ${grid.rows * grid.cols} patches`],
    ['tokens', `${tokenCount(c)}${prefix ? ` (${prefix} + ${grid.rows * grid.cols} patches)` : ' (patches only)'}`],
    ['variant', `${v.normPlacement}-norm, ${v.activation}, patch embedding ${v.patchEmbedding}${c.embedNorm ? ' + LayerNorm on the tokens' : ''}, attention ${v.attention}, LayerScale ${v.layerScale === 'none' ? 'none' : `on ${v.layerScale} (folded into the Linear before it)`}`],
    ['depth', `${c.depth} blocks, ${c.normPlacement}-norm`],
    ['dim', `${c.embedDim}, ${c.numHeads} heads × ${c.embedDim / c.numHeads}, MLP ${c.mlpDim}, qkv bias ${c.qkvBias ? 'yes' : 'no'}`],
    ['head', `${pooling}, ${finalNorm}, ${c.numClasses} classes`],
    ['numerics', `LayerNorm eps ${c.layerNormEps.toExponential()}, activation ${c.activation}`],
    ['parameters', cost.parameters.toLocaleString('en-US')],
    ['compute', `${si(cost.flops)}FLOPs per image (${si(cost.multiplyAdds)} multiply-adds)`],
    [
      'preprocessing',
      `resize shorter side to ${pre.resizeShorter} (${pre.interpolation}), center-crop ${pre.height}×${pre.width}, mean [${pre.mean.join(', ')}], std [${pre.std.join(', ')}] (${pre.source})`,
    ],
  ];
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  return rows.map(([k, v]) => `${k.padEnd(width)}${v}`).join('\n') + '\n';
}

export const inspectCommand: CommandModule<object, InspectArgs> = {
  command: 'inspect <model>',
  describe: 'Print the ViT or Swin architecture recognized in an ONNX file (or why it is not recognized)',
  builder: (y: Argv<object>) =>
    y
      .positional('model', { type: 'string', demandOption: true, describe: 'path to the .onnx file' })
      .option('json', { type: 'boolean', default: false, describe: 'print a JSON report for machines' })
      .option('image-size', { type: 'number', describe: 'image size when the graph leaves height/width dynamic' })
      .option('output-name', { type: 'string', describe: 'the logits output, when the graph has several' })
      .option('preprocess', { type: 'string', describe: 'preprocessing sidecar JSON (default: <model>.preprocess.json or preprocessor_config.json)' }) as unknown as Argv<InspectArgs>,
  handler: async (argv) => {
    // One read of the file for both families.
    const { bytes, filePath } = await readOnnxSource(argv.model, 'inspect');
    const swin = inspectSwin(bytes, filePath!, argv.json);
    if (swin !== null) {
      process.stdout.write(swin);
      return;
    }
    const model = importBytes(bytes, filePath, { imageSize: argv['image-size'], outputName: argv['output-name'] });
    const cost = vitCost(model.config);
    const pre = readPreprocessing(model.path, model.config, { sidecar: argv.preprocess });
    process.stdout.write(argv.json ? `${JSON.stringify(inspectReport(model, cost, pre), null, 2)}\n` : inspectText(model, cost, pre));
  },
};
