import type { Config } from 'jest';

const common = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  // In-process tests use the client's sources (no build needed); test/integration/client-package
  // packs and installs the built package as a service would.
  moduleNameMapper: { '^@oauth-broker/client$': '<rootDir>/packages/client/src/index.ts' },
};

// Projects so a slow journey can be run alone (`npm run test:e2e`). `npm test` runs the Sentinel
// failover file last, on its own: its promise ("service resumes within 3 s of the new master") is
// about timing, which the rest of the suite competing for two cores would blur.
const config: Config = {
  testTimeout: 30_000,
  // Child processes (redis-server, brokers) are stopped by each file's afterAll; a keep-alive socket
  // of fetch's pool must not hold the run open.
  forceExit: true,
  // Most files wait on sockets, child processes and timers rather than the CPU: three workers keep
  // the whole suite within a few minutes on two cores.
  maxWorkers: 3,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts', '<rootDir>/test/security/**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', '/test/integration/redis-sentinel\\.test\\.ts$'],
    },
    { ...common, displayName: 'failover', testMatch: ['<rootDir>/test/integration/redis-sentinel.test.ts'] },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/test/e2e/**/*.test.ts'] },
  ],
};

export default config;
