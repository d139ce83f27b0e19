import { RedisClient } from '../../../src/connections/redis-client';
import { parseReplicationInfo, ReplicaConfirmation } from '../../../src/connections/replica-confirmation';
import { StoreUnavailableError } from '../../../src/connections/store-unavailable-error';

function info(role: 'master' | 'slave', replid: string, replicaStates: string[]): string {
  return [
    '# Replication',
    `role:${role}`,
    `connected_slaves:${replicaStates.length}`,
    ...replicaStates.map((s, i) => `slave${i}:ip=127.0.0.1,port=${7000 + i},state=${s},offset=10,lag=0`),
    `master_replid:${replid}`,
    'master_replid2:0000000000000000000000000000000000000000',
    'master_repl_offset:10',
    '',
  ].join('\r\n');
}

/** A Redis that answers INFO and WAIT as told, and records the WAITs it was asked. */
function fakeRedis() {
  const state = { info: info('master', 'a'.repeat(40), ['online']), acks: 1, waits: [] as number[] };
  const redis = {
    info: async () => state.info,
    wait: async (n: number) => {
      state.waits.push(n);
      return Math.min(n, state.acks);
    },
  } as unknown as RedisClient;
  return { redis, state };
}

describe('parseReplicationInfo', () => {
  it('counts online replicas only, and reads the role and the replication id', () => {
    expect(parseReplicationInfo(info('master', 'x'.repeat(40), ['online', 'wait_bgsave', 'online']))).toEqual(
      {
        isMaster: true,
        replicationId: 'x'.repeat(40),
        onlineReplicas: 2,
      },
    );
    expect(parseReplicationInfo(info('slave', 'y'.repeat(40), [])).isMaster).toBe(false);
  });
});

describe('ReplicaConfirmation', () => {
  const durability = { replicas: 1, timeoutMs: 500 };

  it('waits for a replica when the master has one online', async () => {
    const { redis, state } = fakeRedis();
    await new ReplicaConfirmation(redis, durability).confirm(1_000);
    expect(state.waits).toEqual([1]);
  });

  it('fails as the store being away when the replica does not confirm in time', async () => {
    const { redis, state } = fakeRedis();
    state.acks = 0;
    await expect(new ReplicaConfirmation(redis, durability).confirm(1_000)).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
  });

  it('fails when the server is no longer a master', async () => {
    const { redis, state } = fakeRedis();
    state.info = info('slave', 'a'.repeat(40), []);
    await expect(new ReplicaConfirmation(redis, durability).confirm(1_000)).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
  });

  it('keeps waiting on a master that just lost its replica (a failover taking it away)', async () => {
    const { redis, state } = fakeRedis();
    const confirmation = new ReplicaConfirmation(redis, durability);
    await confirmation.confirm(1_000);
    state.info = info('master', 'a'.repeat(40), []);
    state.acks = 0;
    await expect(confirmation.confirm(2_000)).rejects.toBeInstanceOf(StoreUnavailableError);
    // Past the grace, a master alone has nothing to wait for.
    await expect(confirmation.confirm(40_000)).resolves.toBeUndefined();
  });

  it('acknowledges at once on a promoted replica with no replica of its own (its master died)', async () => {
    const { redis, state } = fakeRedis();
    const confirmation = new ReplicaConfirmation(redis, durability);
    await confirmation.confirm(1_000);
    state.info = info('master', 'b'.repeat(40), []);
    state.acks = 0;
    state.waits.length = 0;
    await expect(confirmation.confirm(2_000)).resolves.toBeUndefined();
    expect(state.waits).toEqual([]);
  });

  it('acknowledges at once on a master that never had a replica', async () => {
    const { redis, state } = fakeRedis();
    state.info = info('master', 'a'.repeat(40), []);
    await new ReplicaConfirmation(redis, durability).confirm(1_000);
    expect(state.waits).toEqual([]);
  });
});
