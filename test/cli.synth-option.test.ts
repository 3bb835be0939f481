// --synth-option path=value: any synthesis option from the command line, validated with
// the API's own messages; settings applied to several methods adjust a component only
// where the method runs it.

import { nativeAddon } from '../lib/native';
import { mergeSynthesis, quantOptionFlags, synthOptionFlags } from '../lib/cli/synthesis-flags';
import { planQuantization } from '../lib/quant/quant-config';
import { nativeSynthConfig, overridesForMethod, resolveSynthesisOptions } from '../lib/synth/options';
import { completeVitConfig } from '../lib/vit-config';

const model = completeVitConfig({ imageSize: 16, channels: 3, patchSize: 4, embedDim: 16, depth: 4, numHeads: 2, numClasses: 10 });

test('dotted paths build nested options; values parse as JSON, else as strings', () => {
  expect(synthOptionFlags(['apa.loss=kl', 'apa.alpha=0.1', 'tv.form=l2', 'msr=false', 'apa.blocks=[3,4]'])).toEqual({
    apa: { loss: 'kl', alpha: 0.1, blocks: [3, 4] },
    tv: { form: 'l2' },
    msr: false,
  });
});

test('malformed or repeated settings are refused naming the flag', () => {
  expect(() => synthOptionFlags(['apa.loss'])).toThrow(/--synth-option: expected path=value/);
  expect(() => synthOptionFlags(['tv.weight=1', 'tv.weight=2'])).toThrow(/--synth-option tv.weight: given twice/);
  expect(() => synthOptionFlags(['msr=false', 'msr.grid=3'])).toThrow(/'msr' was already set to false/);
});

test('--quant-option overrides take a site or weight name, dots and all, as one key', () => {
  expect(quantOptionFlags(['overrides.blocks.3.fc2_in=8', 'overrides.blocks.0.attn.qkv.weight=6', 'overrides.patch_in=8', 'calibration=joint', 'reconstruction.iters=5'])).toEqual({
    overrides: { 'blocks.3.fc2_in': 8, 'blocks.0.attn.qkv.weight': 6, patch_in: 8 },
    calibration: 'joint',
    reconstruction: { iters: 5 },
  });
  expect(() => quantOptionFlags(['overrides.head_in=8', 'overrides.head_in=6'])).toThrow(/--quant-option overrides.head_in: given twice/);
  // Only the map field reads the rest of the path as a key: synthesis paths stay identifiers.
  expect(() => synthOptionFlags(['overrides.blocks.3.fc2_in=8'])).toThrow(/--synth-option: expected path=value/);
  // The key reaches the quantizer: that site alone goes to 8 bits; an unknown one is refused there.
  const plan = planQuantization(model, { bits: 'w4a4', ...quantOptionFlags(['overrides.blocks.3.fc2_in=8']) });
  const bits = (key: string) => plan.sites.find((p) => p.key === key)?.spec?.bits;
  expect([bits('blocks.3.fc2_in'), bits('blocks.2.fc2_in'), bits('blocks.3.fc1_in')]).toEqual([8, 4, 4]);
  expect(() => planQuantization(model, quantOptionFlags(['overrides.blocks.9.fc2_in=8']))).toThrow(/'blocks.9.fc2_in' names no quantized weight or activation site/);
});

test('an unknown option or value fails in validation with the same path', () => {
  const o = synthOptionFlags(['apa.loss=l1']);
  expect(() => resolveSynthesisOptions(model, o)).toThrow(/synthesis option apa.loss: expected one of 'mse', 'relative-mse', 'kl', received 'l1'/);
  expect(() => resolveSynthesisOptions(model, synthOptionFlags(['apa.weight=3']))).toThrow(/synthesis option apa.weight/);
});

test('a component setting does not switch the component on for a method that runs without it', () => {
  const o = mergeSynthesis({ apa: { alpha: 16 } }, synthOptionFlags(['apa.loss=kl']));
  expect(o).toEqual({ apa: { alpha: 16, loss: 'kl' } });
  const psaq = resolveSynthesisOptions(model, { ...overridesForMethod('psaq', o), method: 'psaq' });
  expect(psaq.apa.enabled).toBe(false);
  expect(psaq.pse.enabled).toBe(true);
  const spdfq = resolveSynthesisOptions(model, { ...overridesForMethod('spdfq', o), method: 'spdfq' });
  expect(spdfq.apa).toMatchObject({ enabled: true, alpha: 16, loss: 'kl' });
  // Explicitly enabled, it is on for any method.
  const forced = resolveSynthesisOptions(model, { ...overridesForMethod('inversion', { apa: { enabled: true, alpha: 1 } }), method: 'inversion' });
  expect(forced.apa.enabled).toBe(true);
});

test('the native config written by TypeScript has exactly the fields the native parser reads', () => {
  // One list per side (nativeSynthConfig, the binding's field table): a field added on one
  // side only would be silently ignored or reported missing at run time.
  for (const method of ['spdfq', 'psaq', 'inversion'] as const) {
    const written = Object.keys(nativeSynthConfig(model, resolveSynthesisOptions(model, { method }))).sort();
    expect(written).toEqual([...nativeAddon().synthConfigKeys()].sort());
  }
});

test('every command that synthesizes or quantizes takes the option flags, repeatable', async () => {
  const { main } = await import('../lib/cli/main');
  const spy = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    // A bad value reaches validation (the flag was accepted and parsed), for each command.
    expect(await main(['synth', '--model', 'none.onnx', '--out', '/tmp/spdfq-x', '--synth-option', 'apa.loss=kl', '--synth-option', 'tv.form=l2'])).not.toBe(0);
    const said = spy.mock.calls.map((c) => String(c[0])).join('');
    expect(said).not.toMatch(/given more than once|Unknown argument/);
    expect(said).toMatch(/none\.onnx/); // parsing passed: it went on to open the model
    spy.mockClear();
    expect(await main(['quantize', '--model', 'none.onnx', '--calib', 'noise', '--quant-option', 'calibration=sequential', '--quant-option', 'reconstruction.head=true'])).not.toBe(0);
    const quantSaid = spy.mock.calls.map((c) => String(c[0])).join('');
    expect(quantSaid).not.toMatch(/given more than once|Unknown argument/);
    expect(quantSaid).toMatch(/none\.onnx/);
  } finally {
    spy.mockRestore();
  }
});
