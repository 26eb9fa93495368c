/** Tests run the TypeScript sources through ts-jest; integration tests spawn the compiled CLI (dist/). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/tests'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tests/tsconfig.json' }] },
  globalSetup: '<rootDir>/tests/support/global-setup.js',
  testTimeout: 30000,
  maxWorkers: 2,
};
