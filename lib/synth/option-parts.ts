// Resolving each part of the synthesis options (schedule, APA, MSR, SL, TV, PSE, real
// images) from what the user gave and SYNTH_DEFAULTS, with validation against the model.

import { SynthModelShape } from './model-shape';
import { bad, blocksOf, bool, int, known, oneOf, part, real } from './option-checks';
import {
  APA_ALPHA_MAX,
  APA_LOSS_FORMS,
  ApaOptions,
  IMAGENET_PREPROCESS,
  MsrOptions,
  Preprocess,
  PseOptions,
  ResolvedSynthesisOptions,
  SlOptions,
  SYNTH_DEFAULTS,
  SynthesisOptions,
  SynthMethod,
} from './option-types';

const D = SYNTH_DEFAULTS;

/** Deeper half of the blocks, 1-based: ⌈L/2⌉ … L ([summary] l = L/2 … L; ⌈⌉ for odd L [ours]). */
export function deepHalfBlocks(depth: number): number[] {
  const first = Math.max(1, Math.ceil(depth / 2));
  return Array.from({ length: depth - first + 1 }, (_, i) => first + i);
}

const allBlocks = (depth: number) => Array.from({ length: depth }, (_, i) => i + 1);

type Schedule = Pick<ResolvedSynthesisOptions, 'images' | 'iters' | 'rounds' | 'warmupIters' | 'rollFractions' | 'seed' | 'lr' | 'betas' | 'adamEps' | 'initStd' | 'flip'>;

export function resolveSchedule(method: SynthMethod, o: SynthesisOptions): Schedule {
  const images = int('images', o.images ?? D.images, 1, 1 << 20);
  const rounds = int('rounds', o.rounds ?? D.rounds(method), 1, 100);
  const iters = int('iters', o.iters ?? D.iters, 0, 1e7);
  const perRound = Math.floor(iters / rounds);
  const warmupIters = int('warmupIters', o.warmupIters ?? D.warmupIters(perRound), 0, 1e7);
  if (warmupIters > perRound) bad('warmupIters', `at most the iterations of one round (${perRound})`, warmupIters);
  const defaultRoll = D.rollFractions(method);
  const rollIn = o.rollFractions ?? Array.from({ length: rounds }, (_, r) => defaultRoll[Math.min(r, defaultRoll.length - 1)]);
  if (!Array.isArray(rollIn) || rollIn.length !== rounds) bad('rollFractions', `one fraction per round (${rounds})`, rollIn);
  const betasIn = o.betas ?? D.betas;
  if (!Array.isArray(betasIn) || betasIn.length !== 2) bad('betas', 'a pair [beta1, beta2]', betasIn);
  return {
    images,
    iters,
    rounds,
    warmupIters,
    rollFractions: rollIn.map((f, i) => real(`rollFractions[${i}]`, f, 0, 0.99)),
    seed: int('seed', o.seed ?? D.seed, 0, Number.MAX_SAFE_INTEGER),
    lr: real('lr', o.lr ?? D.lr(method), 0, 3e38, true),
    betas: [real('betas[0]', betasIn[0], 0, 0.999999), real('betas[1]', betasIn[1], 0, 0.999999)],
    adamEps: real('adamEps', o.adamEps ?? D.adamEps, 0, 1, true),
    initStd: real('initStd', o.initStd ?? D.initStd, 0, 1e3),
    flip: bool('flip', o.flip ?? D.flip),
  };
}

export function resolvePreprocess(model: SynthModelShape, p: Preprocess | undefined): Preprocess {
  const C = model.channels;
  if (p === undefined) {
    if (C !== 3) bad('preprocess', `the model's input mean and std (${C} channel(s); the ImageNet default only fits 3)`, undefined);
    return IMAGENET_PREPROCESS;
  }
  if (!p || !Array.isArray(p.mean) || !Array.isArray(p.std) || p.mean.length !== C || p.std.length !== C) {
    bad('preprocess', `{ mean, std } with ${C} value(s) each`, JSON.stringify(p));
  }
  return {
    mean: p.mean.map((m, i) => real(`preprocess.mean[${i}]`, m, -1e3, 1e3)),
    std: p.std.map((s, i) => real(`preprocess.std[${i}]`, s, 0, 1e3, true)),
  };
}

export function resolveTargets(model: SynthModelShape, images: number, targets: ArrayLike<number> | undefined): number[] | null {
  if (targets === undefined) return null;
  const t = Array.from(targets);
  if (t.length !== images) bad('targets', `one class per image (${images})`, `${t.length} entries`);
  return t.map((c, i) => int(`targets[${i}]`, c, 0, model.numClasses - 1));
}

export function resolveApa(model: SynthModelShape, v: unknown, defaultOn: boolean): ResolvedSynthesisOptions['apa'] {
  const a = part<ApaOptions>('apa', v, defaultOn && D.apa.enabled);
  known('apa', a.o, ['enabled', 'alpha', 'components', 'stdMin', 'stdMaxFraction', 'blocks', 'depthWeight', 'query', 'priorPerBlock', 'loss']);
  const alphaIn = a.o.alpha ?? D.apa.alpha;
  const query = oneOf('apa.query', a.o.query ?? D.apa.query, ['auto', 'class', 'mean'] as const);
  const resolvedQuery = query === 'auto' ? (model.pooling === 'token' ? 'class' : 'mean') : query;
  if (a.on && resolvedQuery === 'class' && !model.classToken) bad('apa.query', "'mean' or 'auto' for a model without a class token", query);
  return {
    enabled: a.on,
    alpha: alphaIn === 'auto' ? 'auto' : real('apa.alpha', alphaIn, 0, APA_ALPHA_MAX, true),
    components: int('apa.components', a.o.components ?? D.apa.components, 1, 64),
    stdMin: real('apa.stdMin', a.o.stdMin ?? D.apa.stdMin, 0, 1e4, true),
    stdMaxFraction: real('apa.stdMaxFraction', a.o.stdMaxFraction ?? D.apa.stdMaxFraction, 0, 10, true),
    blocks: blocksOf('apa.blocks', a.o.blocks ?? D.apa.blocks, model.depth, { 'deep-half': deepHalfBlocks(model.depth), all: allBlocks(model.depth) }),
    depthWeight: bool('apa.depthWeight', a.o.depthWeight ?? D.apa.depthWeight),
    query: resolvedQuery,
    priorPerBlock: bool('apa.priorPerBlock', a.o.priorPerBlock ?? D.apa.priorPerBlock),
    loss: oneOf('apa.loss', a.o.loss ?? D.apa.loss, APA_LOSS_FORMS),
  };
}

export function resolveMsr(model: SynthModelShape, v: unknown, defaultOn: boolean): ResolvedSynthesisOptions['msr'] {
  const m = part<MsrOptions>('msr', v, defaultOn);
  known('msr', m.o, ['enabled', 'maxRegions', 'grid', 'boxMin', 'boxMax', 'flip', 'regionClasses']);
  const grid = int('msr.grid', m.o.grid ?? D.msr.grid, 1, Math.min(model.imageHeight, model.imageWidth));
  const msr = {
    enabled: m.on,
    maxRegions: int('msr.maxRegions', m.o.maxRegions ?? Math.min(D.msr.maxRegions, grid * grid), 1, grid * grid),
    grid,
    boxMin: real('msr.boxMin', m.o.boxMin ?? D.msr.boxMin, 0, 1, true),
    boxMax: real('msr.boxMax', m.o.boxMax ?? D.msr.boxMax, 0, 1, true),
    flip: bool('msr.flip', m.o.flip ?? D.msr.flip),
    regionClasses: oneOf('msr.regionClasses', m.o.regionClasses ?? D.msr.regionClasses, ['fixed', 'resample'] as const),
  };
  if (msr.boxMin > msr.boxMax) bad('msr.boxMin', `at most msr.boxMax (${msr.boxMax})`, msr.boxMin);
  return msr;
}

export function resolveSl(v: unknown, defaultOn: boolean): ResolvedSynthesisOptions['sl'] {
  const s = part<SlOptions>('sl', v, defaultOn && D.sl.enabled);
  known('sl', s.o, ['enabled', 'logitMin', 'logitMax']);
  const sl = {
    enabled: s.on,
    logitMin: real('sl.logitMin', s.o.logitMin ?? D.sl.logitMin, -1e3, 1e3),
    logitMax: real('sl.logitMax', s.o.logitMax ?? D.sl.logitMax, -1e3, 1e3),
  };
  if (sl.logitMin > sl.logitMax) bad('sl.logitMin', `at most sl.logitMax (${sl.logitMax})`, sl.logitMin);
  return sl;
}

export function resolveTv(method: SynthMethod, v: SynthesisOptions['tv']): ResolvedSynthesisOptions['tv'] {
  const tvIn = v ?? {};
  if (tvIn === null || typeof tvIn !== 'object') bad('tv', 'an options object', tvIn);
  known('tv', tvIn, ['form', 'weight', 'target']);
  const targetIn = tvIn.target === undefined ? D.tv.target(method) : tvIn.target;
  if (targetIn !== null && (!Array.isArray(targetIn) || targetIn.length !== 2)) bad('tv.target', 'null or a range [lo, hi]', targetIn);
  const tv = {
    form: oneOf('tv.form', tvIn.form ?? D.tv.form(targetIn), ['l2', 'l1', 'none'] as const),
    weight: real('tv.weight', tvIn.weight ?? D.tv.weight(method), 0, 1e6),
    target: targetIn === null ? null : ([real('tv.target[0]', targetIn[0], 0, 1e12), real('tv.target[1]', targetIn[1], 0, 1e12)] as [number, number]),
  };
  if (tv.target && tv.target[0] > tv.target[1]) bad('tv.target', 'lo ≤ hi', tv.target);
  return tv;
}

export function resolvePse(model: SynthModelShape, v: unknown, defaultOn: boolean): ResolvedSynthesisOptions['pse'] {
  const q = part<PseOptions>('pse', v, defaultOn);
  known('pse', q.o, ['enabled', 'weight', 'bandwidth', 'points', 'blocks']);
  const pse = {
    enabled: q.on,
    weight: real('pse.weight', q.o.weight ?? D.pse.weight, 0, 1e6),
    bandwidth: real('pse.bandwidth', q.o.bandwidth ?? D.pse.bandwidth, 0, 10, true),
    points: int('pse.points', q.o.points ?? D.pse.points, 2, 4096),
    blocks: blocksOf('pse.blocks', q.o.blocks ?? D.pse.blocks, model.depth, { all: allBlocks(model.depth) }),
  };
  if (pse.enabled && model.imageHeight * model.imageWidth < 2 * model.patchSize ** 2) bad('pse', 'a model with at least 2 patches', 'enabled');
  return pse;
}

export function resolveReal(method: SynthMethod, r: SynthesisOptions['real']): ResolvedSynthesisOptions['real'] {
  if (method !== 'real') return null;
  if (!r || typeof r !== 'object' || typeof r.path !== 'string' || r.path === '') bad('real.path', 'a folder of PNG images or an IDX file', r?.path);
  known('real', r, ['path', 'labels', 'shuffle', 'resize', 'cropPct']);
  if (r.labels !== undefined && typeof r.labels !== 'string') bad('real.labels', 'a path to an IDX labels file', r.labels);
  return {
    path: r.path,
    labels: r.labels ?? null,
    shuffle: bool('real.shuffle', r.shuffle ?? D.real.shuffle),
    resize: oneOf('real.resize', r.resize ?? D.real.resize, ['stretch', 'center-crop'] as const),
    cropPct: real('real.cropPct', r.cropPct ?? D.real.cropPct, 0, 1, true),
  };
}
