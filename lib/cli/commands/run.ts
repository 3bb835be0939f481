// `spdfq-native run`: the whole job (see lib/run/run.ts). With no arguments it runs on the
// bundled CIFAR-10 ViT at W4A4 with SPDFQ and writes ./spdfq-out.

import type { Argv, CommandModule } from 'yargs';
import { run, RunOptions, RunResults } from '../../run/run';
import { displayPath } from '../../run/stages';
import { consoleReporter } from '../console-reporter';
import { BITS_PRESETS, BitsPreset } from '../../quant/quant-config';
import { overridesForMethod, SYNTH_METHODS, SynthMethod } from '../../synth/options';
import { checkExportFormat, QuantExportFormat } from '../../quant/export-onnx';
import { SpdfqError } from '../../errors';
import { apaAlphaFlag, mergeSynthesis, quantOptionFlags, synthOptionFlags } from '../synthesis-flags';
import { withStopSignals } from '../signals';
import { intFlag } from '../flags';

interface RunArgs {
  model?: string;
  bits: string;
  method: string;
  images?: number;
  iters?: number;
  eval?: string;
  'eval-limit'?: number;
  calib?: string;
  device: string;
  seed?: number;
  out: string;
  threads?: number;
  'recon-iters'?: number;
  recon: boolean;
  format: string;
  json: boolean;
  alpha?: number;
  'synth-option'?: string[];
  'quant-option'?: string[];
  softmax: string;
  force: boolean;
  resume: boolean;
}

function pct(x: number | null): string {
  return x === null ? 'n/a' : `${(x * 100).toFixed(2)}%`;
}

export function summary(r: RunResults): string {
  return [
    `model         ${r.model}`,
    `method        ${r.method}, ${r.synthetic_images} images (${r.synthesis_seconds.toFixed(1)} s)${r.resumed.length ? `; reused from the earlier run: ${r.resumed.join(', ')}` : ''}`,
    `bits          ${r.bits}`,
    `fp top-1      ${pct(r.fp_top1)}`,
    `quant top-1   ${pct(r.quant_top1)}  (engine simulation)`,
    r.exported_top1 === null
      ? `export top-1  not measured (${r.export_warnings.find((w) => /not evaluated/.test(w)) ?? 'no evaluation images'})`
      : `export top-1  ${pct(r.exported_top1)}  (onnxruntime on the exported file; ${r.exported_sim_top1 === r.quant_top1 ? 'the exported quantizers are the simulated ones' : `simulation of the exported quantizers ${pct(r.exported_sim_top1)}`}, agreement ${pct(r.exported_agreement)})`,
    `eval images   ${r.eval_images}`,
    `time          ${r.seconds.toFixed(1)} s`,
    // One line: the per-image PNGs are summarized by their folder.
    `outputs       ${r.outputs.filter((o) => !/[\\/]images[\\/]\d+\.png$/.test(o)).map(displayPath).join(', ')} (+ per-image PNGs in synthetic/images/)`,
  ].join('\n');
}

export const runCommand: CommandModule<object, RunArgs> = {
  command: 'run',
  describe: 'Synthesize calibration images from the model, quantize, evaluate and export (default: the bundled CIFAR-10 ViT at W4A4 with SPDFQ)',
  builder: (y: Argv) =>
    y
      .option('model', { type: 'string', describe: 'ONNX model (default: models/cifar10-vit.onnx, bundled)' })
      .option('bits', { type: 'string', default: 'w4a4', describe: `weight/activation bits: ${Object.keys(BITS_PRESETS).join(', ')}` })
      .option('method', { type: 'string', default: 'spdfq', describe: `calibration images: ${SYNTH_METHODS.join(', ')}` })
      .option('images', { type: 'number', describe: 'calibration images (default 32, SPDFQ paper)' })
      .option('iters', { type: 'number', describe: 'synthesis iterations (default 1000, SPDFQ paper)' })
      .option('eval', { type: 'string', describe: 'labelled images: IDX folder/file or image folder (class subfolders or labels.txt); default for the bundled model: its test subset' })
      .option('eval-limit', { type: 'number', describe: 'evaluate at most this many images' })
      .option('calib', { type: 'string', describe: 'real calibration images for --method real (folder or IDX file)' })
      .option('device', { type: 'string', default: 'cpu', describe: 'cpu or cuda[:N]' })
      .option('seed', { type: 'number', describe: 'seed of every random draw (default 0)' })
      .option('out', { type: 'string', default: 'spdfq-out', describe: 'output folder' })
      .option('threads', { type: 'number', describe: 'CPU threads (default: all cores)' })
      .option('recon-iters', { type: 'number', describe: 'block reconstruction iterations per block (default 200: I&S-ViT’s W6A6 setting; 1,000 overfits 32 images at ≤ 4 bits, docs/results.md)' })
      .option('recon', { type: 'boolean', default: true, describe: 'block reconstruction (--no-recon skips it)' })
      .option('format', { type: 'string', default: 'qdq', describe: 'quantized ONNX form: qdq (opset 13, a Swin 17; 8-bit containers), qdq-int4 (opset 21, 4-bit weights) or matmulnbits (com.microsoft MatMulNBits nodes)' })
      .option('alpha', { type: 'number', describe: "SPDFQ's APA weight α1 (default 0.01 with the KL form: docs/results.md, \"SPDFQ's defaults\"; --synth-option apa.alpha=auto for the automatic weight)" })
      .option('force', { type: 'boolean', default: false, describe: 'into an --out folder holding an earlier run: start over (removes only what run writes)' })
      .option('resume', { type: 'boolean', default: false, describe: 'into an --out folder holding an earlier run of this job: reuse its completed stages (synthetic images, quantized model) whose inputs and options are unchanged' })
      .option('softmax', { type: 'string', default: 'log2', describe: "post-softmax quantizer: log2 (RepQ-ViT; exported as its exact formula in float ops) or uniform (a pure QDQ graph); docs/quantization.md measures both" })
      .option('synth-option', { type: 'array', string: true, describe: 'any synthesis option by its API path (repeatable): e.g. apa.loss=kl, tv.weight=0.5, msr=false (docs/synthesis.md lists them)' })
      .option('quant-option', { type: 'array', string: true, describe: 'any quantization option by its API path (repeatable): e.g. calibration=sequential, reconstruction.rounding=adaround, reconstruction.head=true (docs/quantization.md lists them)' })
      .option('json', { type: 'boolean', default: false, describe: 'print results.json to stdout instead of the summary' }) as unknown as Argv<RunArgs>,
  handler: async (a) => {
    intFlag('images', a.images, 1);
    intFlag('iters', a.iters, 0);
    intFlag('eval-limit', a['eval-limit'], 1);
    intFlag('seed', a.seed, 0);
    intFlag('threads', a.threads, 1);
    intFlag('recon-iters', a['recon-iters'], 0);
    if (!(a.bits in BITS_PRESETS)) throw new SpdfqError('E_CONFIG', `--bits: expected one of ${Object.keys(BITS_PRESETS).join(', ')}, received '${a.bits}'`);
    if (!SYNTH_METHODS.includes(a.method as SynthMethod)) throw new SpdfqError('E_CONFIG', `--method: expected one of ${SYNTH_METHODS.join(', ')}, received '${a.method}'`);
    checkExportFormat('--format', a.format);
    if (a.softmax !== 'log2' && a.softmax !== 'uniform') throw new SpdfqError('E_CONFIG', `--softmax: expected log2 or uniform, received '${a.softmax}'`);
    // A flag that adjusts a component (apa.loss=kl) does not switch it on for a method that
    // runs without it; `apa.enabled=true` does.
    const synthesis = overridesForMethod(a.method as SynthMethod, mergeSynthesis(apaAlphaFlag(a.alpha), synthOptionFlags(a['synth-option'])));
    await withStopSignals(async (signal) => {
      const res = await run({
        model: a.model,
        bits: a.bits as BitsPreset,
        method: a.method as SynthMethod,
        images: a.images,
        iters: a.iters,
        eval: a.eval,
        evalLimit: a['eval-limit'],
        calib: a.calib,
        device: a.device,
        seed: a.seed,
        out: a.out,
        threads: a.threads,
        reconstruction: !a.recon ? false : a['recon-iters'] !== undefined ? { iters: a['recon-iters'] } : undefined,
        exportFormat: a.format as QuantExportFormat,
        softmaxQuantizer: a.softmax as 'log2' | 'uniform',
        quant: quantOptionFlags(a['quant-option']) as RunOptions['quant'],
        synthesis,
        reporter: consoleReporter(),
        signal,
        force: a.force,
        resume: a.resume,
        cliFlags: true,
      });
      process.stdout.write(a.json ? `${JSON.stringify(res, null, 2)}\n` : `${summary(res)}\n`);
    });
  },
};
