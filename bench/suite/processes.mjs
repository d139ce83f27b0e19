// The processes the scenarios of bench/run.mjs measure and drive: brokers of the build under test,
// the floor (bench/floor.mjs) and the fake provider (bench/fake-provider.mjs).
import { join } from 'node:path';
import { freePort, request, startBrokerProcess, startChild, waitUntil } from '../lib.mjs';
import { agent, DEPLOYED_NODE_OPTIONS, DIST, HERE, PROVIDER, RETURN_TO, ROOT, SECRETS } from './settings.mjs';

function cleanEnv(extra) {
  // Only what the process needs: a developer's REDIS_* or provider variables must not leak in.
  return { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'production', ...extra };
}

/** What a bench broker adds to the environment every bench broker has (see startBrokerProcess). */
function brokerEnv(fakeUrl) {
  const p = PROVIDER.toUpperCase().replace(/-/g, '_');
  return {
    // As deployed: `npm start` and the Dockerfile run node with these V8 options.
    NODE_OPTIONS: DEPLOYED_NODE_OPTIONS,
    ...SECRETS,
    ALLOWED_RETURN_URLS: RETURN_TO,
    [`${p}_CLIENT_ID`]: 'bench-client',
    [`${p}_CLIENT_SECRET`]: 'bench-client-secret',
    [`${p}_AUTHORIZATION_URL`]: `${fakeUrl}/authorize`,
    [`${p}_TOKEN_URL`]: `${fakeUrl}/token`,
    [`${p}_REVOCATION_URL`]: `${fakeUrl}/revoke`,
  };
}

export async function startBroker(name, redisUrl, fakeUrl, nodeArgs = [], extraEnv = {}) {
  return startBrokerProcess({
    name,
    dist: DIST,
    redisUrl,
    env: { ...brokerEnv(fakeUrl), ...extraEnv },
    agent,
    nodeArgs,
  });
}

/** A floor process: bench/floor.mjs (bare Express 5) or, with `script`, another (floor-node-http.mjs). */
export async function startFloor(redisUrl, script = 'floor.mjs') {
  const port = await freePort();
  const proc = startChild(script.replace(/\.mjs$/, ''), process.execPath, [join(HERE, script)], {
    // The floor runs with the broker's V8 options, so the ratio compares the code alone.
    env: cleanEnv({
      PORT: String(port),
      REDIS_URL: redisUrl,
      FLOOR_PREFIX: 'floor:',
      NODE_OPTIONS: DEPLOYED_NODE_OPTIONS,
    }),
    cwd: ROOT,
  });
  const url = `http://127.0.0.1:${port}`;
  await waitUntil('floor', async () => (await request(agent, `${url}/healthz`)).status === 200, 10_000, proc);
  return { ...proc, url };
}

export async function startFakeProvider() {
  const port = await freePort();
  const proc = startChild('fake-provider', process.execPath, [join(HERE, 'fake-provider.mjs')], {
    env: cleanEnv({ PORT: String(port) }),
    cwd: ROOT,
  });
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(
    'fake provider',
    async () => (await request(agent, `${url}/_stats`)).status === 200,
    10_000,
    proc,
  );
  return {
    ...proc,
    url,
    async stats() {
      return JSON.parse((await request(agent, `${url}/_stats`)).body);
    },
    async delay(ms) {
      await request(agent, `${url}/_config?delay_ms=${ms}`, { method: 'POST' });
    },
  };
}
