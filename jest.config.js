/** Jest runs the TypeScript tests directly through ts-jest; the addon must be built first (npm install does it). */
module.exports = {
  // Every test shares the outer realm's typed arrays (see the file): native addons create them.
  testEnvironment: '<rootDir>/test/helpers/shared-realm-environment.js',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: { strict: true, esModuleInterop: true, types: ['node', 'jest'], resolveJsonModule: true } }] },
  testTimeout: 120000,
};
