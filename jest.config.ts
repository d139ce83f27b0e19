import type { Config } from 'jest';

const common = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
};

// Three projects so a slow journey can be run alone (`npm run test:e2e`), while `npm test` runs them all.
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
    },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/test/e2e/**/*.test.ts'] },
  ],
};

export default config;
