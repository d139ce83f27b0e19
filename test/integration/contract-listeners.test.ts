import { networkInterfaces } from 'node:os';
import { TEST_INTERNAL_KEY } from '../helpers/broker-harness';
import { BrokerProcess } from '../helpers/broker-process';
import {
  SECOND_KEY,
  CONTRACT_DEFAULTS,
  expectProblem,
  useContractSuite,
  portBusy,
  canListen,
} from '../helpers/contract-suite';

/**
 * The two listeners of the built broker, from outside (docs/api.md, docs/operations.md): which
 * routes each serves, the internal API keys, and where each binds by default. The set-up and the
 * shared checks are in test/helpers/contract-suite.ts.
 */
describe('contract, from outside on node dist/main.js: the two listeners', () => {
  const suite = useContractSuite(1);

  describe('processes and listeners', () => {
    it('serves /healthz on PORT and /readyz and /metrics on INTERNAL_PORT, each where HOST and INTERNAL_HOST say', async () => {
      expect((await fetch(`${suite.b1.publicUrl}/healthz`)).status).toBe(200);
      expect((await fetch(`${suite.b1.internalUrl}/readyz`)).status).toBe(200);
      const metrics = await fetch(`${suite.b1.internalUrl}/metrics`);
      expect(metrics.status).toBe(200);
      expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    });

    it('answers 404 on the public listener for /internal/*, /readyz and /metrics, as for any unknown path', async () => {
      const auth = { authorization: `Bearer ${TEST_INTERNAL_KEY}` };
      const unknown = await fetch(`${suite.b1.publicUrl}/no-such-path-here`, { headers: auth });
      expect(unknown.status).toBe(404);
      for (const path of [
        '/internal/providers',
        '/internal/connections',
        '/internal/openapi.json',
        '/readyz',
        '/metrics',
      ]) {
        const res = await fetch(`${suite.b1.publicUrl}${path}`, { headers: auth });
        expect({ path, status: res.status, type: res.headers.get('content-type') }).toEqual({
          path,
          status: 404,
          type: unknown.headers.get('content-type'),
        });
      }
      const post = await fetch(`${suite.b1.publicUrl}/internal/connect-sessions`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ provider: 'jobber', connection_id: 'x' }),
      });
      expect(post.status).toBe(404);
    });

    it('takes every key of INTERNAL_API_KEYS, and answers 401 unauthorized without a key or with a wrong one', async () => {
      for (const key of [TEST_INTERNAL_KEY, SECOND_KEY]) {
        expect(
          (await suite.b1.api('/internal/providers', { headers: { authorization: `Bearer ${key}` } })).status,
        ).toBe(200);
      }
      expectProblem(
        await suite.b1.api('/internal/providers', {
          headers: { authorization: 'Bearer not-a-key-of-this-broker' },
        }),
        401,
        'unauthorized',
      );
      const none = await fetch(`${suite.b1.internalUrl}/internal/connections/jobber/x/token`);
      expect(none.status).toBe(401);
      expect(((await none.json()) as { code: string }).code).toBe('unauthorized');
    });

    it('listens on 0.0.0.0:3000 (public) and 127.0.0.1:3001 (internal) when HOST, PORT, INTERNAL_HOST and INTERNAL_PORT are unset', async () => {
      const free = [await canListen(3000, '0.0.0.0'), await canListen(3001, '127.0.0.1')];
      if (!free.every(Boolean)) {
        console.log('skipped the default-listener check: port 3000 or 3001 is in use on this machine');
        return;
      }
      const broker = await BrokerProcess.start(
        {
          ...CONTRACT_DEFAULTS,
          REDIS_URL: suite.redis.url,
          PUBLIC_URL: 'http://127.0.0.1:3000',
          HOST: undefined,
          PORT: undefined,
          INTERNAL_HOST: undefined,
          INTERNAL_PORT: undefined,
        },
        { publicPort: 3000, internalPort: 3001 },
      );
      suite.others.push(broker);
      try {
        expect((await fetch('http://127.0.0.1:3000/healthz')).status).toBe(200);
        expect((await fetch('http://127.0.0.1:3001/readyz')).status).toBe(200);
        const external = Object.values(networkInterfaces())
          .flat()
          .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
        if (external) {
          // Public on every interface; internal on loopback only.
          expect((await fetch(`http://${external}:3000/healthz`)).status).toBe(200);
          expect(await portBusy(3001, external)).toBe(false);
        } else {
          console.log('no non-loopback IPv4 address: checked the default ports on loopback only');
        }
      } finally {
        await broker.stop('SIGKILL');
      }
    });
  });
});
