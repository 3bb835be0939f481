// Jest config for the GPU tests (`npm run test:gpu` runs it through scripts/test-gpu.js).
// Kept apart from the default config: these files end in .gpu.ts, which the default
// testMatch (every *.test.ts) never picks up, so `npm test` does not run them.
const base = require('../../jest.config.js');

module.exports = {
  ...base,
  rootDir: '../..',
  roots: ['<rootDir>/test/gpu'],
  testMatch: ['**/*.gpu.ts'],
  testTimeout: 600000,
};
