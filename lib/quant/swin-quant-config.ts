// The quantization plan of a Swin Transformer (docs/swin.md, "Stage: quantization"):
// RepQ-ViT's sites and quantizers as for the ViT (quant-config.ts resolves the options
// once for both), over torchvision's module names. Sites: the image, the eight sites of
// every block (qkv, q, k, v, softmax output, proj, fc1, fc2 inputs), each patch merging's
// reduction input, the head input. Post-LayerNorm sites — the qkv and fc1 inputs and the
// reduction input (RepQ-ViT's code reparameterizes `norm`/`reduction` of PatchMerging too)
// — are calibrated per channel and folded into the LayerNorm and the next Linear. Block
// reconstruction as the ViT's, with the same options and defaults (quant-config.ts), over
// every block and patch merging (native/quant/reconstruct_swin.cc).

import { SwinConfig } from '../swin';
import { windowGeometry } from '../onnx/swin-geometry';
import { CalibrationStage } from './calibration';
import {
  activationSpec, blockSites, checkOverrides, patchInputSite, QuantOptions, QuantPlan, resolveQuantSettings, SitePlan, WeightPlan, weightSpec,
} from './quant-config';

/** torchvision's module prefix of block i of stage s, and of the merge after stage s. */
export const swinBlockPrefix = (s: number, i: number): string => `features.${2 * s + 1}.${i}.`;
export const swinMergePrefix = (s: number): string => `features.${2 * s + 2}.`;

/** Each stage's token grid [height, width]. */
export function swinStageGrids(c: SwinConfig): [number, number][] {
  const grids: [number, number][] = [];
  let [h, w] = [c.imageHeight / c.patchSize, c.imageWidth / c.patchSize];
  for (let s = 0; s < c.depths.length; s++) {
    grids.push([h, w]);
    [h, w] = [Math.ceil(h / 2), Math.ceil(w / 2)];
  }
  return grids;
}

export function planSwinQuantization(config: SwinConfig, options: QuantOptions = {}): QuantPlan {
  const st = resolveQuantSettings(options, ['features.0.0.weight', 'head.weight', 'head_in']);
  const notes: string[] = [];
  const sites: SitePlan[] = [patchInputSite(st)];
  const weights: WeightPlan[] = [];
  const addWeight = (name: string) => weights.push({ name, spec: weightSpec(st, name) });
  addWeight('features.0.0.weight');
  const grids = swinStageGrids(config);
  let l = 0;
  config.depths.forEach((depth, s) => {
    // A padded grid feeds zero rows into qkv after norm1 (torchvision pads after it): a
    // folded LayerNorm bias would not reach them, but the folded qkv bias would, so the
    // reparameterization is exact only on grids the windows tile.
    const g = windowGeometry(grids[s][0], grids[s][1], config.windowSize, false);
    const tiled = g.padHeight === g.height && g.padWidth === g.width;
    if (st.reparameterize && !tiled) {
      notes.push(`stage ${s}: its ${g.height}×${g.width} grid is padded to the window, so its qkv inputs keep per-tensor quantizers (no reparameterization)`);
    }
    for (let i = 0; i < depth; i++, l++) {
      const p = swinBlockPrefix(s, i);
      sites.push(...blockSites(st, p, l, (site) =>
        !st.reparameterize ? null
          : site === 'qkv_in' && tiled ? { norm: `${p}norm1`, linear: `${p}attn.qkv` }
            : site === 'fc1_in' ? { norm: `${p}norm2`, linear: `${p}mlp.0` } : null));
      for (const n of ['attn.qkv', 'attn.proj', 'mlp.0', 'mlp.3']) addWeight(`${p}${n}.weight`);
    }
    if (s + 1 < config.depths.length) {
      const p = swinMergePrefix(s);
      const key = `${p}reduce_in`;
      sites.push({
        site: 'reduce_in', block: s, key, spec: activationSpec(st, key, 'uniform', st.actBits), perChannelForReparam: st.reparameterize,
        ...(st.reparameterize ? { reparam: { norm: `${p}norm`, linear: `${p}reduction` } } : {}),
      });
      addWeight(`${p}reduction.weight`);
    }
  });
  sites.push({ site: 'head_in', key: 'head_in', spec: activationSpec(st, 'head_in', 'uniform', st.actBits), perChannelForReparam: false });
  addWeight('head.weight');
  checkOverrides(st, sites, weights, "'features.1.0.attn.qkv.weight', 'features.1.0.fc2_in', 'features.2.reduce_in', 'patch_in'");
  return {
    preset: st.preset, inputRange: st.inputRange, weightBits: st.weightBits, actBits: st.actBits, sites, weights,
    reparameterize: st.reparameterize, reconstruction: st.reconstruction, calibration: st.calibration, calibrationBatch: st.calibrationBatch, notes,
  };
}

/** A Swin's calibration stages in data-flow order: the patch embedding, each block, each
 *  patch merging after its stage's blocks, the head. */
export function swinCalibrationStages(c: SwinConfig): CalibrationStage[] {
  const stages: CalibrationStage[] = [{ sites: (s) => s.site === 'patch_in', weights: (w) => w.startsWith('features.0.') }];
  let l = 0;
  c.depths.forEach((depth, s) => {
    for (let i = 0; i < depth; i++, l++) {
      const block = l;
      const p = swinBlockPrefix(s, i);
      stages.push({ sites: (x) => x.block === block && x.site !== 'reduce_in', weights: (w) => w.startsWith(p) });
    }
    if (s + 1 < c.depths.length) {
      const p = swinMergePrefix(s);
      stages.push({ sites: (x) => x.site === 'reduce_in' && x.block === s, weights: (w) => w.startsWith(p) });
    }
  });
  stages.push({ sites: (s) => s.site === 'head_in', weights: (w) => w.startsWith('head.') });
  return stages;
}
