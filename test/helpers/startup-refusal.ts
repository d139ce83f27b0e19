import { ConfigError } from '../../src/config/config-error';
import { loadConfig } from '../../src/config/load-config';
import { baseEnv } from './broker-harness';
import { ensureBuilt } from './broker-process';
import { ExitResult, runBrokerToExit } from './contract-process';

/** The problems `run` refuses its configuration with (a ConfigError's lines); [] where it goes through. */
export function problemsThrownBy(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

/** The problems loadConfig reports for the test base environment with `env` over it; [] where it loads. */
export function configProblems(env: Record<string, string | undefined>): string[] {
  return problemsThrownBy(() => loadConfig({ ...baseEnv(3000), ...env }));
}

/**
 * A real `node dist/main.js` (built first) with the test base environment, `env` over it, Redis
 * nowhere and both ports 0, run to its exit: for configurations it must refuse before it listens.
 */
export async function runBrokerWith(env: Record<string, string>): Promise<ExitResult> {
  await ensureBuilt();
  return runBrokerToExit(
    {
      ...(baseEnv(1) as Record<string, string>),
      REDIS_URL: 'redis://127.0.0.1:1',
      PORT: '0',
      INTERNAL_PORT: '0',
      ...env,
    },
    20_000,
  );
}
