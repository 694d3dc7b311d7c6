// Unit tests exercise the pure core with plain data; integration tests (*.itg.test.ts) run the
// bundled action against a private Docker daemon that the test run starts itself.
const transform = { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.test.json' }] };
module.exports = {
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/__tests__/**/*.test.ts'],
      testPathIgnorePatterns: ['\\.itg\\.test\\.ts$'],
      setupFilesAfterEnv: ['<rootDir>/__tests__/support/unit-timeout.cjs'],
    },
    {
      displayName: 'integration',
      // Node's environment, which also prints the action's output when a test fails.
      testEnvironment: '<rootDir>/__tests__/support/environment.cjs',
      transform,
      testMatch: ['<rootDir>/__tests__/**/*.itg.test.ts'],
      setupFilesAfterEnv: ['<rootDir>/__tests__/support/timeout.cjs'],
      slowTestThreshold: 60,
    },
  ],
};
