/** Tests run in band: kernel tests share the machine's scheduler and BPF. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // Long runs (npm run soak) are not part of npm test.
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/soak/'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testTimeout: 60000,
  verbose: true,
};
