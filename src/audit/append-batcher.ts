import type { RedisClient } from '../connections/redis-client';

/**
 * Appends entries (KEYS: one stream per entry; ARGV: the trim mode and length, then each entry's
 * one field value) and answers, per entry, 1 when written and 0 when Redis refused it (pcall: one
 * refused shard fails only its own entries).
 */
const APPEND_SCRIPT = `
local out = {}
for i = 1, #KEYS do
  local r = redis.pcall('XADD', KEYS[i], 'MAXLEN', ARGV[1], ARGV[2], '*', 'e', ARGV[i + 2])
  if type(r) == 'table' and r.err then out[i] = 0 else out[i] = 1 end
end
return out
`;

const MAX_BATCH = 256;

interface Pending {
  key: string;
  value: string;
  done: (error?: Error) => void;
}

type AppendCommand = (numKeys: number, ...args: string[]) => Promise<number[]>;
type Xadd = (key: string, ...args: string[]) => Promise<string | null>;

/**
 * Writes the audit entries of one turn of the event loop together: under load many requests get
 * their tokens from one socket read of Redis replies, and one script call then appends all their
 * entries, instead of one XADD each (each command costs the broker and Redis more than the entry
 * itself; bench/audit.mjs). Each entry's promise settles with its own outcome. On a Cluster the
 * entries of one turn go out as one call per shard (a script's keys must share a slot).
 */
export class AppendBatcher {
  private queue: Pending[] = [];
  private scheduled = false;
  private readonly append: AppendCommand;
  private readonly xadd: Xadd;
  private readonly cluster: boolean;

  constructor(
    private readonly redis: RedisClient,
    private readonly trim: [mode: string, length: string],
    /** Called once a batch is sent: the client's flushWrites (src/connections/redis-client.ts). */
    private readonly afterSend: () => void = () => undefined,
  ) {
    redis.defineCommand('obAuditAppend', { lua: APPEND_SCRIPT });
    const commands = redis as unknown as { obAuditAppend: AppendCommand };
    this.append = commands.obAuditAppend.bind(redis) as AppendCommand;
    const plain = redis as unknown as { xadd: Xadd };
    this.xadd = plain.xadd.bind(redis) as Xadd;
    this.cluster = (redis as unknown as { isCluster?: boolean }).isCluster === true;
  }

  /** Resolves once the entry is in Redis; rejects when it could not be written. */
  add(key: string, value: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ key, value, done: (error) => (error ? reject(error) : resolve()) });
      if (this.scheduled) return;
      this.scheduled = true;
      // After the replies of this socket read have all been handled: their entries go together.
      setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    this.scheduled = false;
    const queue = this.queue;
    this.queue = [];
    const groups = this.cluster ? groupByKey(queue) : [queue];
    for (const group of groups) {
      for (let i = 0; i < group.length; i += MAX_BATCH) this.send(group.slice(i, i + MAX_BATCH));
    }
    // Out now, with whatever else this turn sent: this runs at a turn's end already.
    this.afterSend();
  }

  private send(batch: Pending[]): void {
    if (batch.length === 1) {
      // One entry: a plain XADD costs Redis less than a script.
      const [only] = batch as [Pending];
      this.xadd(only.key, 'MAXLEN', ...this.trim, '*', 'e', only.value).then(
        () => only.done(),
        (error: unknown) => only.done(error instanceof Error ? error : new Error('audit append failed')),
      );
      return;
    }
    const keys = batch.map((p) => p.key);
    const values = batch.map((p) => p.value);
    this.append(keys.length, ...keys, ...this.trim, ...values).then(
      (written) =>
        batch.forEach((p, i) =>
          p.done(written[i] === 1 ? undefined : new Error('Redis refused the audit entry')),
        ),
      (error: unknown) => {
        const failure = error instanceof Error ? error : new Error('audit append failed');
        batch.forEach((p) => p.done(failure));
      },
    );
  }
}

function groupByKey(queue: Pending[]): Pending[][] {
  const groups = new Map<string, Pending[]>();
  for (const p of queue) {
    const group = groups.get(p.key);
    if (group) group.push(p);
    else groups.set(p.key, [p]);
  }
  return [...groups.values()];
}
