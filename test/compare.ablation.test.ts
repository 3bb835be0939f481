// The SPDFQ ablation's synthesis options: each variant switches APA, MSR and SL on or off
// without losing the settings the run gave a component (the --alpha of `compare`).

import { ABLATION, ablationSynthesis } from '../lib/compare/ablation';

test('an ablation variant keeps the run\'s own component settings (--alpha) and switches the others off', () => {
  const all = ABLATION.find((v) => v.name === 'APA+MSR+SL')!;
  const msrOnly = ABLATION.find((v) => v.name === 'MSR')!;
  expect(ablationSynthesis({ apa: { alpha: 16 } }, all)).toEqual({ apa: { alpha: 16, enabled: true }, msr: true, sl: true });
  expect(ablationSynthesis({ apa: { alpha: 16 } }, msrOnly)).toEqual({ apa: false, msr: true, sl: false });
  expect(ablationSynthesis(undefined, all)).toEqual({ apa: true, msr: true, sl: true });
});
