// `compare --sweep`: runs grouped by protocol, each group merged over its seeds, one row per
// setting labelled by what differs between the groups; and the image cache a sweep reuses.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CompareResult } from '../lib/compare/compare';
import { CompareRecord, mergeCompareRecords } from '../lib/compare/merge';
import { explicitBackEnd } from '../lib/quant/quant-config';
import { sweepMarkdown, sweepTable } from '../lib/compare/sweep';
import { cacheKey, ImageCache } from '../lib/compare/image-cache';

function record(seeds: number[], cells: CompareResult['cells'], synthesis: object, reconIters = 200): CompareRecord {
  return {
    options: {
      methods: Object.keys(cells) as never, bits: ['w4a4', 'w3a3'], seeds,
      images: 32, iters: 300, reconstruction: { iters: reconIters }, ablation: false, ablationBits: 'w4a4', synthesis, realPath: 'real', preprocess: { mean: [0.5], std: [0.25] },
    },
    result: { fpTop1: 0.9, cells, ablation: {}, quality: { spdfq: seeds.map(() => ({ featureCosine: 0.2, frechet: 50, clsAttentionEntropy: 3, rangeError: 0.1 })) }, realQualityReference: { featureCosine: 0.7, clsAttentionEntropy: 3 }, seconds: 10 },
  };
}

test('one row per protocol, labelled by the settings that differ, seeds merged within a protocol', () => {
  const kl0 = record([0], { spdfq: { w4a4: [0.8], w3a3: [0.7] } }, { apa: { loss: 'kl', alpha: 0.1 } });
  const kl12 = record([1, 2], { spdfq: { w4a4: [0.82, 0.84], w3a3: [0.72, 0.74] } }, { apa: { alpha: 0.1, loss: 'kl' } });
  const off = record([0, 1, 2], { spdfq: { w4a4: [0.8, 0.8, 0.8], w3a3: [0.6, 0.62, 0.64] } }, { apa: false }, 100);
  const s = sweepTable([{ source: 'a', record: kl0 }, { source: 'b', record: kl12 }, { source: 'c', record: off }]);
  expect(s.rows.map((r) => r.label)).toEqual(['reconstruction.iters=200 apa.alpha=0.1 apa.loss=kl', 'reconstruction.iters=100 apa=false']);
  expect(s.rows[0].cells.w4a4).toEqual([0.8, 0.82, 0.84]);
  const md = sweepMarkdown(s);
  expect(md).toContain('| 82.00 ± 2.00 | 72.00 ± 2.00 | 0.200 | 50.00 |');
  expect(md).toContain('| 80.00 ± 0.00 | 62.00 ± 2.00 |');
});

test('the image cache returns what was stored under a key, and nothing for another size', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spdfq-cache-'));
  const cache = new ImageCache(dir);
  const key = cacheKey({ b: 1, a: [1, 2] });
  expect(key).toBe(cacheKey({ a: [1, 2], b: 1 }));
  expect(key).not.toBe(cacheKey({ a: [1, 2], b: 2 }));
  expect(cache.get(key, 2, 3)).toBeNull();
  cache.put(key, { images: Float32Array.from([1, 2, 3, 4, 5, 6]), targets: Int32Array.from([7, 8]) });
  const hit = cache.get(key, 2, 3)!;
  expect(Array.from(hit.images)).toEqual([1, 2, 3, 4, 5, 6]);
  expect(Array.from(hit.targets)).toEqual([7, 8]);
  expect(cache.get(key, 3, 2)).toBeNull();
});

test('records name their back end: a legacy record without settings is the old back end, and one under today\'s defaults shares a protocol with the same back end named explicitly', () => {
  const cells = { real: { w4a4: [0.8], w3a3: [0.7] } };
  const withQuant = (seed: number, quant: object | undefined) => {
    const r = record([seed], cells, {});
    if (quant) r.options.quant = quant as never;
    return r;
  };
  // Made before 2026-12-04 with the defaults: joint calibration, none of LSQ / embed / head.
  const legacy = withQuant(0, undefined);
  // The same back end pinned under today's defaults, as the sweep specs now do.
  const pinned = withQuant(1, { calibration: 'joint', reconstruction: { learnSteps: false, embed: false, head: false } });
  // Made before the change with the combination named; and today's default as compare records it.
  const combinedThen = withQuant(2, { calibration: 'sequential', reconstruction: { learnSteps: true, embed: true, head: true } });
  const today = withQuant(3, explicitBackEnd({}));
  const s = sweepTable([legacy, pinned, combinedThen, today].map((r, i) => ({ source: `r${i}`, record: r })));
  expect(s.rows.map((r) => [r.label, r.cells.w4a4.length])).toEqual([
    ['quant.calibration=joint quant.reconstruction.embed=false quant.reconstruction.head=false quant.reconstruction.learnSteps=false', 2],
    ['(defaults)', 2],
  ]);
  // One setting apart is another protocol, and merge refuses it.
  const lsqOnly = withQuant(4, { reconstruction: { learnSteps: true } });
  expect(() => mergeCompareRecords([{ source: 'l', record: legacy }, { source: 'q', record: lsqOnly }])).toThrow(/option quant is \{[^}]*"embed":false,"head":false\}\} in q but .*"learnSteps":false\}\} in l/);
});

test('compare records today\'s back end explicitly; qdrop turns the LSQ default off, as the two are not combined', () => {
  expect(explicitBackEnd({})).toEqual({ calibration: 'sequential', reconstruction: { embed: true, head: true, learnSteps: true } });
  expect(explicitBackEnd({ reconstruction: { qdrop: 0.5 } })).toEqual({ calibration: 'sequential', reconstruction: { qdrop: 0.5, embed: true, head: true, learnSteps: false } });
  expect(explicitBackEnd({ calibration: 'joint', reconstruction: { head: false } }).reconstruction).toEqual({ embed: true, head: false, learnSteps: true });
});
