import { RedisClient, createRedisClient, waitForReady } from '../../src/connections/redis-client';
import { StoreUnavailableError, classifyStoreFailure } from '../../src/connections/store-unavailable-error';
import { toBrokerError } from '../../src/http/to-broker-error';
import { TestRedis } from '../helpers/redis-server';

async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('the command succeeded');
}

/**
 * The store boundary types Redis failures: a client made by createRedisClient rejects a command
 * Redis could not serve with a StoreUnavailableError (whatever ioredis said), and leaves the
 * server's answers to wrong commands as they are. The HTTP layer maps by type only.
 */
describe('StoreUnavailableError at the Redis boundary', () => {
  let redis: TestRedis;
  let client: RedisClient;

  beforeAll(async () => {
    redis = await TestRedis.start();
    client = createRedisClient({ url: redis.url });
    client.on('error', () => undefined);
    expect(await waitForReady(client, 5000)).toBe(true);
  });

  afterAll(async () => {
    client.disconnect();
    await redis.close();
  });

  it('leaves a wrong command (WRONGTYPE, a script error) as it is: a bug, 500', async () => {
    await client.set('classify:str', 'x');
    const wrongType = await failureOf(client.hget('classify:str', 'f'));
    expect(wrongType).not.toBeInstanceOf(StoreUnavailableError);
    expect((wrongType as Error).message).toMatch(/^WRONGTYPE/);
    expect(toBrokerError(wrongType).code).toBe('internal_error');
    const scriptError = await failureOf(client.eval("return redis.error_reply('ERR boom')", 0));
    expect(scriptError).not.toBeInstanceOf(StoreUnavailableError);
  });

  it.each([
    'MOVED 3999 127.0.0.1:6381',
    'ASK 3999 127.0.0.1:6381',
    'TRYAGAIN Multiple keys request during rehashing of slot',
    'CLUSTERDOWN The cluster is down',
    'LOADING Redis is loading the dataset in memory',
    "READONLY You can't write against a read only replica.",
    'MASTERDOWN Link with MASTER is down',
    'BUSY Redis is busy running a script',
  ])('types a real error reply "%s" (sent back by a script) as StoreUnavailableError', async (reply) => {
    const error = await failureOf(client.eval(`return redis.error_reply(ARGV[1])`, 0, reply));
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as StoreUnavailableError).cause).toBeInstanceOf(Error);
    expect(toBrokerError(error).code).toBe('store_unavailable');
  });

  it('types the failures of a client whose server is gone, and recovers when it is back', async () => {
    await redis.stop();
    const closed = await failureOf(client.get('classify:any'));
    expect(closed).toBeInstanceOf(StoreUnavailableError);
    expect(toBrokerError(closed)).toMatchObject({ code: 'store_unavailable', status: 503 });
    await redis.startProcess();
    const deadline = Date.now() + 5000;
    while (client.status !== 'ready' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await client.ping()).toBe('PONG');
  });

  it('maps only by type: a message that merely looks like an outage is not one', () => {
    expect(toBrokerError(new TypeError('Connection is closed')).code).toBe('internal_error');
    expect(classifyStoreFailure(new TypeError('CLUSTERDOWN'))).not.toBeInstanceOf(StoreUnavailableError);
  });
});
