import { ConnectionService } from '../connections/connection-service';
import { BrokerMetrics } from '../observability/metrics';
import { Logger, errorForLog } from '../observability/logger';
import { ProviderRegistry } from '../providers/provider-registry';

export interface SweeperDeps {
  connections: Pick<
    ConnectionService,
    'due' | 'countDue' | 'refreshInBackground' | 'postpone' | 'repairIfDue'
  >;
  registry: Pick<ProviderRegistry, 'get'>;
  intervalMs: number;
  logger: Logger;
  metrics: BrokerMetrics;
  /** Due connections taken per look. */
  batchSize?: number;
  /** Background refreshes at once in all (SWEEP_CONCURRENCY, default 8). */
  concurrency?: number;
  /** Background refreshes at once against one provider (SWEEP_CONCURRENCY_PER_PROVIDER, default 2). */
  perProviderConcurrency?: number;
  /** Repairs owner index entries a crashed write left behind (docs/end-users-and-tags.md). */
  ownerRepair?: { repair(now: number): Promise<number> };
  /** How often one of the processes checks every record for a lost index or schedule entry. */
  repairIntervalMs?: number;
}

/** An hour: a record a crash left off the schedule gets its keep-alive at most this late. */
const REPAIR_INTERVAL_MS = 3_600_000;

/** One sweep under way: stop() cancels it (no refresh starts after that) and awaits `done`. */
interface SweepRun {
  cancelled: boolean;
  done?: Promise<unknown>;
}

/**
 * Every process runs one: every SWEEP_INTERVAL (jittered) it takes the due connections from the
 * schedule (ZRANGEBYSCORE … LIMIT: the cost follows the due connections, not all of them) and
 * refreshes each under the same per-connection lock as a caller, so three processes sweeping at
 * once refresh each connection once.
 */
export class Sweeper {
  private timer?: NodeJS.Timeout;
  private repairTimer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private repairing?: Promise<void>;
  private stopped = true;
  /** Sweeps under way (timer-driven or called directly); stop() cancels them between refreshes. */
  private readonly sweeps = new Set<SweepRun>();

  constructor(private readonly deps: SweeperDeps) {}

  start(): void {
    this.stopped = false;
    this.schedule(Math.random() * this.deps.intervalMs);
    // The repair has a timer of its own: a sweep's cost stays that of the due work alone. Every
    // process asks every sweep interval; the lease lets one of them scan per repair interval.
    this.repairTimer = setInterval(() => {
      if (!this.repairing) this.repairing = this.repairOnce().finally(() => (this.repairing = undefined));
    }, this.deps.intervalMs);
    this.repairTimer.unref();
  }

  /**
   * Stops taking work at once (no look and no refresh starts after this call, synchronously) and
   * resolves when the refreshes already under way have finished and stored their answer: a
   * rotated refresh token is never dropped by a shutdown.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.repairTimer) clearInterval(this.repairTimer);
    for (const sweep of this.sweeps) sweep.cancelled = true;
    await Promise.all([this.running, this.repairing, ...[...this.sweeps].map((s) => s.done)]);
  }

  /** One look at the schedule; answers how many connections it worked on. */
  sweepOnce(): Promise<number> {
    // Not `this.stopped`: a sweep called directly (tests, tools) runs whether or not start() was.
    const sweep: SweepRun = { cancelled: false };
    this.sweeps.add(sweep);
    const done = this.sweep(sweep).finally(() => this.sweeps.delete(sweep));
    sweep.done = done;
    return done;
  }

  private async sweep(sweep: SweepRun): Promise<number> {
    const started = process.hrtime.bigint();
    const batch = this.deps.batchSize ?? 100;
    let worked = 0;
    // Each due entry once per sweep: one that stays due (its lock held elsewhere, its failure not
    // stored) must not be taken again and again while the entries behind it wait.
    const handled = new Set<string>();
    try {
      for (let round = 0; round < 10 && !sweep.cancelled; round++) {
        // The entries handled already may still sit at the front: look past them.
        const due = await this.deps.connections.due(batch + handled.size);
        const fresh = due.filter((d) => !handled.has(`${d.provider}:${d.connectionId}`));
        if (fresh.length === 0) break;
        const todo = fresh.slice(0, batch);
        for (const d of todo) handled.add(`${d.provider}:${d.connectionId}`);
        worked += await this.work(todo, sweep);
        if (due.length < batch + handled.size - todo.length) break;
      }
      // Cancelled by stop(): the backlog is for the next process to see, not worth a Redis call now.
      if (!sweep.cancelled) this.deps.metrics.dueBacklog.set(await this.deps.connections.countDue());
      if (!sweep.cancelled && this.deps.ownerRepair) await this.deps.ownerRepair.repair(Date.now());
    } catch (error) {
      this.deps.logger.warn({ err: errorForLog(error) }, 'sweep failed');
    } finally {
      this.deps.metrics.sweepDuration.observe(Number(process.hrtime.bigint() - started) / 1e9);
    }
    return worked;
  }

  /**
   * Records a crash (or a Cluster master's outage) left outside the index or the schedule get
   * their entries back: the schedule alone would never show them to a sweep. Runs when no process
   * has in the last repair interval; stops between SCAN pages once stop() is called.
   */
  async repairOnce(): Promise<void> {
    try {
      const repaired = await this.deps.connections.repairIfDue(
        this.deps.repairIntervalMs ?? REPAIR_INTERVAL_MS,
        () => this.stopped,
      );
      if (repaired && (repaired.indexAdded > 0 || repaired.scheduleAdded > 0))
        this.deps.logger.warn(
          {
            index_added: repaired.indexAdded,
            schedule_added: repaired.scheduleAdded,
            records: repaired.records,
          },
          'index or schedule entries put back',
        );
    } catch (error) {
      this.deps.logger.warn({ err: errorForLog(error) }, 'index repair failed');
    }
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.sweepOnce().then(() => {
        this.running = undefined;
        this.schedule(this.deps.intervalMs * (0.9 + Math.random() * 0.2));
      });
    }, delayMs);
    this.timer.unref();
  }

  /**
   * Refreshes `due` with at most `concurrency` refreshes at once, and at most
   * `perProviderConcurrency` of them against any one provider; stops taking items once the sweep
   * is cancelled. Answers how many it took.
   */
  private async work(
    due: Array<{ provider: string; connectionId: string }>,
    sweep: SweepRun,
  ): Promise<number> {
    const limit = Math.max(1, this.deps.concurrency ?? 8);
    const perProvider = Math.max(1, Math.min(this.deps.perProviderConcurrency ?? 2, limit));
    const active = new Map<string, number>();
    const queue = [...due];
    let taken = 0;
    const workers = Array.from({ length: Math.min(limit, queue.length) }, async () => {
      while (queue.length > 0 && !sweep.cancelled) {
        const index = queue.findIndex((d) => (active.get(d.provider) ?? 0) < perProvider);
        if (index < 0) {
          // Every provider left is at its bound: wait for one of its refreshes to finish.
          await new Promise((r) => setTimeout(r, 10));
          continue;
        }
        const item = queue.splice(index, 1)[0]!;
        taken += 1;
        active.set(item.provider, (active.get(item.provider) ?? 0) + 1);
        try {
          await this.refreshOne(item.provider, item.connectionId);
        } finally {
          active.set(item.provider, (active.get(item.provider) ?? 1) - 1);
        }
      }
    });
    await Promise.all(workers);
    return taken;
  }

  private async refreshOne(providerId: string, connectionId: string): Promise<void> {
    const provider = this.deps.registry.get(providerId);
    try {
      if (!provider || !provider.enabled) {
        // Not ours to refresh now (provider removed or without credentials): look again in an hour.
        await this.deps.connections.postpone(providerId, connectionId, 3_600_000);
        return;
      }
      await this.deps.connections.refreshInBackground(provider, connectionId);
    } catch (error) {
      this.deps.logger.warn(
        { provider: providerId, connection_id: connectionId, err: errorForLog(error) },
        'background refresh failed',
      );
    }
  }
}
