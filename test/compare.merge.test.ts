// `compare --merge`: one table from several runs, each value kept with its seed; runs of a
// different model or protocol, and a seed measured twice with different results, are refused.

import { compareMarkdown, CompareResult, ImageQuality } from '../lib/compare/compare';
import { CompareRecord, mergeCompareRecords } from '../lib/compare/merge';

const Q = (c: number): ImageQuality => ({ featureCosine: c, frechet: 10 * c, clsAttentionEntropy: 3, rangeError: 0.1 });

function record(seeds: number[], cells: CompareResult['cells'], extra: Partial<CompareResult> = {}, iters = 300): CompareRecord {
  const quality: CompareResult['quality'] = {};
  for (const m of Object.keys(cells)) quality[m] = seeds.map((s) => Q(0.5 + s / 100));
  return {
    options: {
      methods: Object.keys(cells) as never, bits: [...new Set(Object.values(cells).flatMap((c) => Object.keys(c)))] as never, seeds,
      images: 32, iters, reconstruction: { iters: 200 }, ablation: false, ablationBits: 'w4a4', synthesis: {}, realPath: 'real', preprocess: { mean: [0.5], std: [0.25] },
    },
    result: { fpTop1: 0.9, cells, ablation: {}, quality, realQualityReference: { featureCosine: 0.7, clsAttentionEntropy: 3 }, seconds: 10, ...extra },
  };
}

test('seeds from separate runs join one cell; the table gives mean ± sample std and marks short cells', () => {
  // psaq: seeds 0 and 1 at W4A4 and W3A3 in one run, seed 2 at all of them in another.
  const a = record([0, 1], { psaq: { w4a4: [0.8, 0.82], w3a3: [0.7, 0.72] } });
  const b = record([2], { psaq: { w8a8: [0.9], w4a4: [0.84], w3a3: [0.74] } });
  const merged = mergeCompareRecords([{ source: 'a', record: a }, { source: 'b', record: b }]);
  expect(merged.options.seeds).toEqual([0, 1, 2]);
  expect(merged.options.bits).toEqual(['w8a8', 'w4a4', 'w3a3']);
  expect(merged.result.cells.psaq.w4a4).toEqual([0.8, 0.82, 0.84]);
  expect(merged.result.cellSeeds!.psaq.w8a8).toEqual([2]);
  expect(merged.result.quality.psaq.map((q) => q.featureCosine)).toEqual([0.5, 0.51, 0.52]);
  expect(merged.result.seconds).toBe(20);
  const md = compareMarkdown(merged.result, merged.options);
  // 0.80, 0.82, 0.84: mean 82.00, sample std 2.00; W8A8 has one seed of three.
  expect(md).toContain('| PSAQ-ViT | 90.00 (n=1) | 82.00 ± 2.00 | 72.00 ± 2.00 |');
  expect(md).toContain('| PSAQ-ViT | 0.510 | 5.10 | 3.000 | 0.100 |');
});

test('a seed measured twice must agree: equal values merge, different ones are refused', () => {
  const a = record([0, 1], { noise: { w4a4: [0.8, 0.82] } });
  const same = record([1, 2], { noise: { w4a4: [0.82, 0.84] } });
  expect(mergeCompareRecords([{ source: 'a', record: a }, { source: 's', record: same }]).result.cells.noise.w4a4).toEqual([0.8, 0.82, 0.84]);
  const other = record([1], { noise: { w4a4: [0.6] } });
  expect(() => mergeCompareRecords([{ source: 'a', record: a }, { source: 'o', record: other }])).toThrow(/noise w4a4 top-1 at seed 1 differs between a and o/);
});

test('runs on another model or with another protocol are refused; files without seed lists use the run\'s seeds', () => {
  const a = record([0], { spdfq: { w4a4: [0.8] } });
  const otherModel = record([1], { spdfq: { w4a4: [0.8] } }, { fpTop1: 0.95 });
  expect(() => mergeCompareRecords([{ source: 'a', record: a }, { source: 'm', record: otherModel }])).toThrow(/full-precision top-1 0.95.*same model/);
  const otherIters = record([1], { spdfq: { w4a4: [0.8] } }, {}, 1000);
  expect(() => mergeCompareRecords([{ source: 'a', record: a }, { source: 'i', record: otherIters }])).toThrow(/option iters is 1000 in i but 300 in a/);
  // An override given in another key order is the same protocol.
  const x = record([0], { spdfq: { w4a4: [0.8] } });
  const y = record([1], { spdfq: { w4a4: [0.82] } });
  x.options.synthesis = { tv: { weight: 1, form: 'l1' }, lr: 0.1 };
  y.options.synthesis = { lr: 0.1, tv: { form: 'l1', weight: 1 } };
  expect(mergeCompareRecords([{ source: 'x', record: x }, { source: 'y', record: y }]).result.cells.spdfq.w4a4).toEqual([0.8, 0.82]);
  expect(() => mergeCompareRecords([])).toThrow(/at least one/);
});

test('ablation variants split over runs merge into the paper\'s table order with their seeds', () => {
  // Run a measured seed 0 of every variant; run b seed 1 of the last two, then run c seed 1 of the first two.
  const names = ['none', 'APA', 'MSR', 'SL', 'APA+MSR', 'APA+SL', 'MSR+SL', 'APA+MSR+SL'];
  const a = record([0], {}, { ablation: Object.fromEntries(names.map((n, i) => [n, [0.8 + i / 100]])) });
  a.options.ablation = true;
  const b = record([1], {}, { ablation: { 'MSR+SL': [0.9], 'APA+MSR+SL': [0.91] } });
  b.options.ablation = true;
  b.options.ablationVariants = ['MSR+SL', 'APA+MSR+SL'];
  const c = record([1], {}, { ablation: { none: [0.7], APA: [0.71] } });
  c.options.ablation = true;
  c.options.ablationVariants = ['none', 'APA'];
  const merged = mergeCompareRecords([b, c, a].map((record, i) => ({ source: 'bca'[i], record })));
  expect(Object.keys(merged.result.ablation)).toEqual(names);
  expect(merged.result.ablation['APA+MSR+SL']).toEqual([0.8 + 7 / 100, 0.91]);
  expect(merged.result.ablationSeeds!.APA).toEqual([0, 1]);
  expect(merged.result.ablation.MSR).toEqual([0.8 + 2 / 100]);
  expect(merged.options.ablationVariants).toBeUndefined();
  const md = compareMarkdown(merged.result, merged.options);
  // 0.80 and 0.70: mean 75.00, sample std 7.07; MSR was measured at one seed of two.
  expect(md).toContain('| none | 75.00 ± 7.07 |');
  expect(md).toContain('| MSR | 82.00 (n=1) |');
  expect(md.indexOf('| none |')).toBeLessThan(md.indexOf('| APA+MSR+SL |'));
  // No method was run: no empty method table, the full precision stated once.
  expect(md).not.toContain('| method |');
  expect(md).toContain('Full precision: 90.00 % top-1; seeds 0, 1.');
});

test('runs that quantized a bit width with other quantizer forms are refused; records without forms are the legacy ones', () => {
  const legacy = record([0], { spdfq: { w8a8: [0.8] } });
  const same = record([1], { spdfq: { w8a8: [0.82] } });
  same.options.quantizerForms = { w8a8: 'asymmetric weights, log2 softmax' };
  expect(mergeCompareRecords([{ source: 'l', record: legacy }, { source: 's', record: same }]).result.cells.spdfq.w8a8).toEqual([0.8, 0.82]);
  const deploy = record([1], { spdfq: { w8a8: [0.82] } });
  deploy.options.quantizerForms = { w8a8: 'symmetric weights, uniform softmax' };
  expect(() => mergeCompareRecords([{ source: 'l', record: legacy }, { source: 'd', record: deploy }])).toThrow(/w8a8 was quantized with symmetric weights, uniform softmax in d but asymmetric weights, log2 softmax in l/);
  // Other bit widths of the same runs are not affected.
  const w4 = record([1], { spdfq: { w4a4: [0.7] } });
  w4.options.quantizerForms = { w4a4: 'asymmetric weights, log2 softmax' };
  expect(mergeCompareRecords([{ source: 'd', record: deploy }, { source: 'w', record: w4 }]).options.quantizerForms).toEqual({ w8a8: 'symmetric weights, uniform softmax', w4a4: 'asymmetric weights, log2 softmax' });
});
