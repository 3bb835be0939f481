// Import rules for lib/ (checked in `npm test` by test/architecture.test.ts): no cycles,
// and the layering of the folders (docs/architecture.md), lowest first:
//   errors, vit-config, native, image → onnx, data, vit → synth, quant, eval, train
//   → compare, run → cli.
const layer = (name, folder, forbidden) => ({
  name,
  severity: 'error',
  comment: `${folder} sits below ${forbidden.join(', ')} (docs/architecture.md)`,
  from: { path: `^lib/${folder}` },
  to: { path: `^lib/(${forbidden.join('|')})/` },
});
module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'Import cycles make load order fragile and hide layering mistakes.', from: {}, to: { circular: true } },
    layer('image-is-a-leaf', 'image/', ['onnx', 'data', 'synth', 'quant', 'eval', 'train', 'compare', 'run', 'cli']),
    layer('onnx-below-methods', 'onnx/', ['synth', 'quant', 'eval', 'train', 'compare', 'run', 'cli']),
    layer('data-below-methods', 'data/', ['synth', 'quant', 'eval', 'train', 'compare', 'run', 'cli']),
    layer('synth-below-workflows', 'synth/', ['quant', 'compare', 'run', 'cli', 'train']),
    layer('quant-below-workflows', 'quant/', ['synth', 'compare', 'run', 'cli', 'train']),
    layer('eval-below-workflows', 'eval/', ['compare', 'run', 'cli', 'train']),
    layer('compare-beside-run', 'compare/', ['run', 'cli']),
    layer('run-below-cli', 'run/', ['compare', 'cli']),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
