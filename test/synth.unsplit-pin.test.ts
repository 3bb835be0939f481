// The unsplit synthesis loop is pinned: the runs of test/helpers/synth-shard-cases.ts give
// exactly the images, draws, α1 and losses recorded in test/fixtures/synth-unsplit/pins.json,
// which were made by main's loop before shards existed (the fixture's README says how). A
// change to the loop that moves one bit of one image fails here: shards must not cost the
// unsplit run its reproducibility (every committed result table was made by it).

import * as fs from 'fs';
import * as path from 'path';
import { nativeAddon } from '../lib/native';
import { synthesize } from '../lib/synth/synthesize';
import { runDigest, SYNTH_CASES, tinySwin, tinyVit } from './helpers/synth-shard-cases';

const PINS = path.join(__dirname, 'fixtures', 'synth-unsplit', 'pins.json');
// SPDFQ_WRITE_SYNTH_PINS=1 rewrites the pins instead of checking them (only ever from a build
// of a commit whose unsplit loop is the reference).
const WRITE = process.env.SPDFQ_WRITE_SYNTH_PINS === '1';
// The kernels' rounding is per instruction set (the GEMM and row kernels have scalar, AVX2
// and AVX-512 variants): the pins hold for the path they were made on, recorded beside them.
const PATH = nativeAddon().cpuFeatures().gemm;
const pinned = WRITE ? null : (JSON.parse(fs.readFileSync(PINS, 'utf8')) as { kernels: string; runs: Record<string, unknown> });
const pinTest = WRITE || pinned!.kernels === PATH ? test : test.skip;
if (!WRITE && pinned!.kernels !== PATH) console.warn(`synth pins: made on the ${pinned!.kernels} kernels, this CPU runs ${PATH}: not checked`);

pinTest('every pinned unsplit run repeats bit for bit', async () => {
  const vit = await tinyVit();
  const swin = tinySwin();
  const got: Record<string, unknown> = {};
  for (const c of SYNTH_CASES) {
    const r = await synthesize(c.model === 'vit' ? vit : swin, c.options);
    got[c.name] = runDigest(r);
    if (c.microBatched) expect(r.plan!.chunkImages).toBeLessThan(c.options.images!);
  }
  await vit.dispose();
  await swin.dispose();
  if (WRITE) {
    fs.writeFileSync(PINS, JSON.stringify({ kernels: PATH, runs: got }, null, 1) + '\n');
    return;
  }
  for (const c of SYNTH_CASES) expect({ case: c.name, ...(got[c.name] as object) }).toEqual({ case: c.name, ...(pinned!.runs[c.name] as object) });
});
