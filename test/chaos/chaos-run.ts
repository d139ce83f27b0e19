import { TEST_RETURN_ORIGIN, providerEnv } from '../helpers/broker-harness';
import { ApiAnswer, BrokerProcess, callApi, ensureBuilt } from '../helpers/broker-process';
import { TestBrowser } from '../helpers/browser';
import { freePort } from '../helpers/free-port';
import { recordFigures } from '../helpers/load-run';
import { ConcurrencyRecordingReceiver } from '../helpers/webhook-receiver';
import { RotatingProvider } from './rotating-provider';

const PROVIDER = 'jobber';
const PREFIX = 'chaos:';
const WEBHOOK_SECRET = 'chaos-webhook-secret-0123456789abcdef';
/** The contract: service resumes within 3 s of Redis answering again (or Sentinel naming a master). */
export const RESUME_MS = 3000;

/** The contract's stable error codes and the status each comes with (internal API). */
const CONTRACT_CODES: Record<string, number[]> = {
  unauthorized: [401],
  invalid_request: [400],
  provider_not_found: [404],
  provider_not_enabled: [404],
  connection_not_found: [404],
  reauthorization_required: [409],
  provider_unavailable: [502, 504],
  provider_rejected_client: [502],
  decryption_failed: [500],
  store_unavailable: [503],
  forbidden: [403],
};
/** What the browser-facing pages may answer in this run (success, a refusal page, a redirect). */
const PAGE_STATUSES = new Set([200, 302, 303, 400, 502, 503]);

/** A small seeded generator (mulberry32): the same seed draws the same operations and faults. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type ConnState = 'absent' | 'active' | 'uncertain';

interface Conn {
  id: string;
  state: ConnState;
  busy: boolean;
  family?: number;
  /** The family current when the last acknowledged delete took the connection. */
  deletedFamily?: number;
  deletedAt?: number;
  /** The processes that answered the delete (and ran the refresh raced with it). */
  deletedBy?: number[];
  created201: number;
  deleted204: number;
  /** When the last acknowledged write (PUT, connect, delete) of this connection was answered. */
  lastAckAt?: number;
  lastAck?: string;
}

interface Slot {
  index: number;
  publicPort: number;
  internalPort: number;
  proc?: BrokerProcess;
  up: boolean;
  /** stdout/stderr of earlier lives of this slot, for evidence. */
  pastLogs: string[];
}

export interface Sample {
  op: string;
  slot: number;
  start: number;
  end: number;
  status: number;
  code?: string;
}

export interface Violation {
  kind: string;
  detail: string;
}

export interface Fault {
  name: string;
  atMs: number;
  detail?: string;
}

export interface RedisRecovery {
  fault: string;
  /** Per broker slot: ms from Redis back to the first 200 that slot answered. */
  perProcessMs: number[];
}

export interface ChaosOptions {
  name: string;
  seed: number;
  durationMs: number;
  /** Redis part of the broker environment (REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES …). */
  redisEnv: Record<string, string>;
  /** How many webhook deliveries are still queued (the queue key under PREFIX). */
  queueLength: () => Promise<number>;
  connections?: number;
  workers?: number;
}

/**
 * Three broker processes (`node dist/main.js`) under a steady mix of token reads, forced
 * refreshes, connects (the browser flow across processes, or `PUT`), deletes and deliberate races
 * on one connection, against a provider that rotates and refuses reuse; a scenario injects faults
 * meanwhile. Every answer is recorded; `verify()` then checks from outside what the contract
 * promises and lists each breach with its evidence.
 */
export class ChaosRun {
  readonly rng: () => number;
  readonly samples: Sample[] = [];
  readonly violations: Violation[] = [];
  readonly faults: Fault[] = [];
  readonly recoveries: RedisRecovery[] = [];
  readonly kills: Array<{ at: number; slot: number }> = [];
  /** When Redis was down (killed until it answered again): no write could be stored then. */
  readonly storeOutages: Array<{ from: number; to: number }> = [];

  /** Notes that Redis was down from `from` until it answered again at `to`. */
  storeOutage(from: number, to: number): void {
    this.storeOutages.push({ from, to });
  }
  readonly sigtermExits: Array<{ slot: number; code: number | null; ms: number }> = [];
  provider!: RotatingProvider;
  receiver!: ConcurrencyRecordingReceiver;
  slots: Slot[] = [];
  conns: Conn[] = [];
  t0 = 0;
  private env: Record<string, string> = {};
  private running = false;
  private loops: Promise<void>[] = [];
  private probes: Array<{ slot: number; end: number; status: number }> = [];

  constructor(readonly options: ChaosOptions) {
    this.rng = seeded(options.seed);
  }

  log(message: string): void {
    process.stdout.write(
      `[chaos ${this.options.name} +${((Date.now() - this.t0) / 1000).toFixed(1)}s] ${message}\n`,
    );
  }

  async start(): Promise<void> {
    await ensureBuilt();
    this.provider = await RotatingProvider.start();
    this.receiver = await ConcurrencyRecordingReceiver.start(20);
    this.env = {
      ...this.options.redisEnv,
      REDIS_KEY_PREFIX: PREFIX,
      ...providerEnv(PROVIDER, this.provider.url),
      WEBHOOK_URL: this.receiver.url,
      WEBHOOK_SECRET,
      PROVIDER_TIMEOUT: '4',
      // Shorter than a slow provider's answer: SIGTERM must still wait for refreshes already sent.
      SHUTDOWN_TIMEOUT: '1',
      // Background refreshes (keep-alive) race with the callers' operations.
      KEEPALIVE_AFTER: '8',
      SWEEP_INTERVAL: '2',
      // The circuit opened by the failing provider closes soon after it is back.
      PROVIDER_CIRCUIT_OPEN: '3',
      LOG_LEVEL: 'warn',
    };
    for (let i = 0; i < 3; i++)
      this.slots.push({
        index: i,
        publicPort: await freePort(),
        internalPort: await freePort(),
        up: false,
        pastLogs: [],
      });
    await Promise.all(this.slots.map((s) => this.boot(s)));
    this.t0 = Date.now();
    const n = this.options.connections ?? 24;
    for (let i = 0; i < n; i++)
      this.conns.push({ id: `c${i}`, state: 'absent', busy: false, created201: 0, deleted204: 0 });
    // Half of them exist from the start; one probe connection per process measures recovery.
    for (const conn of this.conns.filter((_, i) => i % 2 === 0)) await this.opPut(conn);
    for (const slot of this.slots) {
      const probe: Conn = {
        id: `probe-${slot.index}`,
        state: 'absent',
        busy: true,
        created201: 0,
        deleted204: 0,
      };
      await this.opPut(probe);
      if (probe.state !== 'active') throw new Error(`probe ${probe.id} could not be imported`);
    }
    this.log(`seed=${this.options.seed} brokers up; ${n} connections (${n / 2} imported)`);
  }

  /** Starts the load and the per-process probes. */
  startLoad(): void {
    this.running = true;
    for (let w = 0; w < (this.options.workers ?? 6); w++) this.loops.push(this.worker());
    for (const slot of this.slots) this.loops.push(this.probe(slot));
  }

  async stopLoad(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** A moment as `+12.3s` from the start of the load. */
  at(ms: number | undefined): string {
    return ms === undefined ? '(never)' : `+${((ms - this.t0) / 1000).toFixed(1)}s`;
  }

  elapsed(): number {
    return Date.now() - this.t0;
  }

  fault(name: string, detail?: string): void {
    this.faults.push({ name, atMs: this.elapsed(), detail });
    this.log(`fault: ${name}${detail ? ` (${detail})` : ''}`);
  }

  // ------------------------------------------------------------------ process faults

  pickSlot(): Slot {
    return this.slots[Math.floor(this.rng() * this.slots.length)]!;
  }

  /** SIGTERM, wait for the exit (it must be 0), start it again on the same ports. */
  async sigterm(slot: Slot, burst = 0): Promise<void> {
    const inFlight = burst > 0 ? this.refreshBurst(burst, slot) : Promise.resolve();
    if (burst > 0) await sleep(300);
    this.fault('SIGTERM broker', `process ${slot.index}`);
    slot.up = false;
    const started = Date.now();
    const code = await slot.proc!.stop('SIGTERM', 20_000);
    this.sigtermExits.push({ slot: slot.index, code, ms: Date.now() - started });
    await this.boot(slot);
    await inFlight;
  }

  /** SIGKILL (a crash), then start it again after `downMs`. */
  async sigkill(slot: Slot, downMs = 500): Promise<void> {
    this.fault('SIGKILL broker', `process ${slot.index}`);
    slot.up = false;
    this.kills.push({ at: Date.now(), slot: slot.index });
    await slot.proc!.kill();
    await sleep(downMs);
    await this.boot(slot);
  }

  /** Each process in turn, a few of its forced refreshes at the provider when SIGTERM comes. */
  async rollingRestart(burst = 3): Promise<void> {
    for (const slot of this.slots) await this.sigterm(slot, burst);
  }

  /**
   * Forced refreshes of `count` active connections through `slot` (a random live process when
   * none), not awaited: a fault injected next finds them at the provider. Answers when all settled.
   */
  refreshBurst(count: number, slot?: Slot): Promise<void> {
    const picked = this.conns.filter((c) => !c.busy && c.state === 'active').slice(0, count);
    for (const conn of picked) conn.busy = true;
    this.log(
      `burst: ${picked.length} forced refreshes through ${slot ? `process ${slot.index}` : 'any process'}`,
    );
    return Promise.all(
      picked.map(async (conn) => {
        try {
          const path = `/internal/connections/${PROVIDER}/${conn.id}/token?force_refresh=true`;
          const answer = slot ? await this.api(slot, path, {}, 'burst') : await this.lb(path, {}, 'burst');
          this.judgeToken(conn, answer, 'burst');
        } finally {
          conn.busy = false;
        }
      }),
    ).then(() => undefined);
  }

  /** `slow`: answers within PROVIDER_TIMEOUT but late; `failing`: 503, nothing rotated. */
  providerPhase(phase: 'normal' | 'slow' | 'failing'): void {
    if (phase === 'slow') this.fault('provider slow', `${this.provider.slowMs} ms a token request`);
    if (phase === 'failing') this.fault('provider failing', '503 on every token request');
    if (phase === 'normal' && this.provider.phase !== 'normal') this.log('provider normal again');
    this.provider.phase = phase;
  }

  /** Records how long each process took to answer 200 again after Redis came back at `backAt`. */
  async measureRecovery(fault: string, backAt: number): Promise<void> {
    const deadline = backAt + 15_000;
    const perProcessMs: number[] = [];
    for (const slot of this.slots) {
      let ms = -1;
      while (Date.now() < deadline) {
        const ok = this.probes.find((p) => p.slot === slot.index && p.end >= backAt && p.status === 200);
        if (ok) {
          ms = ok.end - backAt;
          break;
        }
        await sleep(50);
      }
      perProcessMs.push(ms);
    }
    this.recoveries.push({ fault, perProcessMs });
    this.log(`recovery after ${fault}: ${perProcessMs.join(', ')} ms`);
  }

  // ------------------------------------------------------------------ end of run

  /** Every fault healed: all processes up and ready, the provider normal. */
  async heal(): Promise<void> {
    this.provider.phase = 'normal';
    for (const slot of this.slots) if (!slot.up) await this.boot(slot);
    const deadline = Date.now() + 20_000;
    for (const slot of this.slots) {
      while (Date.now() < deadline) {
        const ready = await fetch(`${slot.proc!.internalUrl}/readyz`).catch(() => undefined);
        if (ready?.status === 200) break;
        await sleep(100);
      }
    }
    // Writes retried after a fault land within a few seconds.
    await sleep(2000);
  }

  /** Checks from outside; answers the figures. Violations land in `this.violations`. */
  async verify(): Promise<Record<string, unknown>> {
    const kinds = new Map<string, number>();
    for (const s of this.samples) {
      const key = s.status === 0 ? 'network (no answer)' : `${s.status}${s.code ? ` ${s.code}` : ''}`;
      kinds.set(key, (kinds.get(key) ?? 0) + 1);
    }
    // 1. Every connection that should be active is active and refreshes; a deleted one stays gone.
    for (const [i, conn] of this.conns.entries()) {
      if (conn.state === 'uncertain') continue;
      const slot = this.slots[i % 3]!;
      const meta = await this.api(slot, `/internal/connections/${PROVIDER}/${conn.id}`);
      if (conn.state === 'absent') {
        if (meta.status !== 404)
          this.violate(
            'deleted connection came back',
            `${this.named(conn)}: metadata answered ${meta.status} ${meta.body?.status ?? ''}`,
          );
        continue;
      }
      if (meta.status !== 200 || meta.body?.status !== 'active') {
        this.violate(
          'active connection not active',
          `${this.named(conn)}: ${meta.status} status=${meta.body?.status} last_error=${JSON.stringify(meta.body?.last_error ?? meta.body?.code)}`,
        );
        continue;
      }
      const fresh = await this.api(
        slot,
        `/internal/connections/${PROVIDER}/${conn.id}/token?force_refresh=true`,
      );
      if (fresh.status !== 200)
        this.violate(
          'active connection does not refresh',
          `${this.named(conn)}: ${fresh.status} ${fresh.body?.code}: ${fresh.body?.detail}`,
        );
    }
    // The listing (an index beside the records) finds every active connection and no deleted one.
    const listed = new Set<string>();
    let cursor: string | null = null;
    do {
      const page: ApiAnswer = await this.api(
        this.slots[0]!,
        `/internal/connections?provider=${PROVIDER}&limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      if (page.status !== 200) {
        this.violate('listing failed', `${page.status} ${page.body?.code}`);
        break;
      }
      for (const c of page.body.connections as Array<{ connection_id: string }>) listed.add(c.connection_id);
      cursor = page.body.next_cursor as string | null;
    } while (cursor);
    for (const conn of this.conns) {
      if (conn.state === 'active' && !listed.has(conn.id))
        this.violate('listing misses an active connection', this.named(conn));
      if (conn.state === 'absent' && listed.has(conn.id))
        this.violate('listing shows a deleted connection', this.named(conn));
    }
    // 2. No refresh token presented again after the provider had rotated it away.
    // A broker killed while its refresh was at the provider, or just after the answer, loses the
    // rotated token by nature: nothing could have stored it.
    // Each process has its own client id, so the provider knows whose refresh rotated a token.
    // The answer can be stored from when it came, or, if Redis was down then, from when Redis
    // answered again; the broker then has a second (reconnect, the late write's next try) to store it.
    const storableFrom = (at: number) => this.storeOutages.find((o) => at >= o.from && at <= o.to)?.to ?? at;
    const exempt = (reuse: { requestedAt: number; retiredAt: number; rotatedBy: string }) =>
      this.kills.some(
        (k) =>
          clientId(k.slot) === reuse.rotatedBy &&
          k.at >= reuse.requestedAt &&
          k.at - storableFrom(reuse.retiredAt) < 1000,
      );
    const lostByNature = new Set<string>();
    for (const reuse of this.provider.reuses) {
      const detail =
        `${reuse.connectionId}: family ${reuse.family} generation ${reuse.generation}, refresh sent at ` +
        `${this.at(reuse.requestedAt)} by process ${reuse.rotatedBy.split('-').pop()}, rotated (answered) at ` +
        `${this.at(reuse.retiredAt)}, ` +
        `presented again at ${this.at(reuse.presentedAt)}`;
      if (exempt(reuse)) {
        this.violate('reuse within a SIGKILL window (by nature)', detail);
        lostByNature.add(reuse.connectionId);
      } else this.violate('retired refresh token presented again', detail);
    }
    // A connection lost that way is reported as such, not as a breach of the active check.
    for (const v of this.violations)
      if (v.kind.startsWith('active connection') && lostByNature.has(v.detail.split(' ')[0]!))
        v.kind = `${v.kind} (lost by nature: its refresher was killed mid-refresh)`;
    // 3. Deleted connections leave no live grant.
    for (const conn of this.conns) {
      if (conn.state !== 'absent' || conn.deletedFamily === undefined) continue;
      if (!this.provider.familyLive(conn.deletedFamily)) continue;
      // The revocation runs after the answer, within PROVIDER_TIMEOUT, on the process that deleted.
      const killedAfter = this.kills.some(
        (k) => conn.deletedBy!.includes(k.slot) && k.at >= conn.deletedAt! && k.at - conn.deletedAt! < 5000,
      );
      this.violate(
        killedAfter
          ? 'live grant after delete within a SIGKILL window (by nature)'
          : 'live grant after delete',
        `${this.named(conn)}: family ${conn.deletedFamily} still has a live refresh token`,
      );
    }
    // 4. Webhooks: the queue drains; each acknowledged create/delete delivered; never two at once.
    const drained = Date.now() + 30_000;
    let queued = -1;
    while (Date.now() < drained) {
      queued = await this.options.queueLength().catch(() => -1);
      if (queued === 0) break;
      await sleep(250);
    }
    await sleep(300);
    if (queued !== 0) this.violate('webhook queue not drained', `${queued} still queued 30 s after the run`);
    for (const id of this.receiver.overlapping())
      this.violate('webhook sent twice at once', `delivery ${id}`);
    for (const conn of this.conns) {
      const of = (type: string) =>
        new Set(
          this.receiver.delivered
            .filter((e) => e.connection_id === conn.id && e.type === type)
            .map((e) => e.id),
        ).size;
      if (of('connection.created') < conn.created201)
        this.violate(
          'webhook not delivered',
          `${this.named(conn)}: ${conn.created201} PUT 201, ${of('connection.created')} connection.created`,
        );
      if (of('connection.deleted') < conn.deleted204)
        this.violate(
          'webhook not delivered',
          `${this.named(conn)}: ${conn.deleted204} DELETE 204, ${of('connection.deleted')} connection.deleted`,
        );
    }
    // 5. SIGTERM exits 0.
    for (const exit of this.sigtermExits)
      if (exit.code !== 0)
        this.violate('SIGTERM did not exit 0', `process ${exit.slot}: exit ${exit.code} after ${exit.ms} ms`);
    // 6. Service back within 3 s of Redis.
    for (const r of this.recoveries)
      for (const [slot, ms] of r.perProcessMs.entries())
        if (ms < 0 || ms > RESUME_MS)
          this.violate('slow recovery', `${r.fault}: process ${slot} ${ms < 0 ? 'never' : `${ms} ms`}`);
    // Evidence for 500s: the log line of each one's request id.
    const errorLines = this.errorLogLines();
    for (const v of this.violations) {
      const id = /request_id=(\S+)/.exec(v.detail)?.[1];
      const line = id ? errorLines.find((l) => l.includes(id)) : undefined;
      const message = line ? /"message":"([^"]*)"/.exec(line)?.[1] : undefined;
      if (message) v.detail += ` (log: ${message})`;
    }

    const presentedTwice = [...this.provider.presented.values()].filter((n) => n > 1).length;
    const figures = {
      scenario: this.options.name,
      seed: this.options.seed,
      duration_s: Math.round(this.elapsed() / 100) / 10,
      requests: this.samples.length,
      answers: Object.fromEntries([...kinds].sort((a, b) => b[1] - a[1])),
      faults: this.faults.map(
        (f) => `${f.name}${f.detail ? ` (${f.detail})` : ''} at +${(f.atMs / 1000).toFixed(1)}s`,
      ),
      faults_injected: this.faults.length,
      recovery_ms: this.recoveries,
      sigterm_exit_ms: this.sigtermExits.map((e) => e.ms),
      provider: {
        refresh_requests: this.provider.refreshes,
        rotations: this.provider.rotations,
        injected_failures: this.provider.injectedFailures,
        tokens_presented_more_than_once: presentedTwice,
        retired_tokens_presented: this.provider.reuses.length,
      },
      webhooks: {
        delivered: this.receiver.delivered.length,
        attempts: [...this.receiver.attempts.values()].reduce((a, b) => a + b, 0),
        sent_twice_at_once: this.receiver.overlapping().length,
      },
      connections: {
        active: this.conns.filter((c) => c.state === 'active').length,
        absent: this.conns.filter((c) => c.state === 'absent').length,
        uncertain: this.conns.filter((c) => c.state === 'uncertain').length,
      },
      violations: this.violations,
      error_log_lines: errorLines.slice(0, 20),
    };
    recordFigures(`chaos-${this.options.name}`, figures);
    const count = (kind: string) => this.violations.filter((v) => v.kind.startsWith(kind)).length;
    process.stdout.write(
      `CHAOS ${this.options.name} seed=${this.options.seed} requests=${this.samples.length} faults=${this.faults.length} ` +
        `500s=${this.samples.filter((s) => s.status === 500).length} network=${kinds.get('network (no answer)') ?? 0} ` +
        `503=${[...kinds].filter(([k]) => k.startsWith('503')).reduce((n, [, v]) => n + v, 0)} ` +
        `recovery_max_ms=${Math.max(0, ...this.recoveries.flatMap((r) => r.perProcessMs))} ` +
        `refreshes=${this.provider.refreshes} reuses=${this.provider.reuses.length} ` +
        `webhooks=${this.receiver.delivered.length} violations=${this.violations.length} ` +
        `(inactive=${count('active connection')} reuse=${count('retired')} code=${count('answer')} ` +
        `grant=${count('live grant after delete')})\n`,
    );
    return figures;
  }

  /** Violations of these kinds, as `kind: detail` lines (for readable assertion failures). */
  breaches(...kinds: string[]): string[] {
    return this.violations
      .filter((v) => kinds.some((k) => v.kind === k))
      .map((v) => `${v.kind}: ${v.detail}`);
  }

  async close(): Promise<void> {
    this.running = false;
    await Promise.all(this.slots.map((s) => s.proc?.kill()));
    await this.receiver?.close();
    await this.provider?.close();
  }

  /** The processes' error log lines; `only` keeps those that hold it (e.g. `"request failed"`). */
  errorLogLines(only?: string): string[] {
    const lines: string[] = [];
    for (const slot of this.slots)
      for (const text of [...slot.pastLogs, slot.proc?.stdout ?? ''])
        for (const line of text.split('\n'))
          if (/"level":"(error|fatal)"/.test(line) && (!only || line.includes(only)))
            lines.push(`process ${slot.index}: ${line.slice(0, 600)}`);
    return lines;
  }

  // ------------------------------------------------------------------ internals

  private violate(kind: string, detail: string): void {
    this.violations.push({ kind, detail });
  }

  private async boot(slot: Slot): Promise<void> {
    if (slot.proc) slot.pastLogs.push(slot.proc.stdout + slot.proc.stderr);
    slot.proc = await BrokerProcess.start(
      { ...this.env, [`${PROVIDER.toUpperCase()}_CLIENT_ID`]: clientId(slot.index) },
      {
        publicPort: slot.publicPort,
        internalPort: slot.internalPort,
        readyTimeoutMs: 20_000,
      },
    );
    slot.up = true;
  }

  private live(): Slot[] {
    return this.slots.filter((s) => s.up);
  }

  /** One call to one process; a failure to get an answer is status 0. */
  private async api(
    slot: Slot,
    path: string,
    init: { method?: string; body?: unknown } = {},
    op = 'verify',
  ): Promise<ApiAnswer> {
    const start = Date.now();
    let answer: ApiAnswer;
    try {
      answer = await callApi(slot.proc!.internalUrl, path, { ...init, timeoutMs: 15_000 });
    } catch {
      answer = { status: 0, body: undefined, headers: new Headers() };
    }
    this.record(op, slot.index, start, answer.status, answer.body);
    return answer;
  }

  private record(op: string, slot: number, start: number, status: number, body: any, page = false): void {
    const code = typeof body === 'object' && body ? (body.code as string | undefined) : undefined;
    this.samples.push({ op, slot, start, end: Date.now(), status, code });
    if (status === 500)
      this.violate(
        'answer 500',
        `${op} on process ${slot} at ${this.at(start)}: ${code ?? ''} request_id=${typeof body === 'object' ? (body?.request_id ?? '') : ''}`,
      );
    else if (status === 0 || status < 300) return;
    else if (page) {
      if (!PAGE_STATUSES.has(status)) this.violate('answer outside the contract', `${op}: page ${status}`);
    } else if (!code || !CONTRACT_CODES[code]?.includes(status))
      this.violate(
        'answer outside the contract',
        `${op} on process ${slot}: ${status} ${code ?? '(no code)'}`,
      );
  }

  /** Like a load balancer: a random live process; no answer at all → another one (up to 4 tries). */
  private async lb(
    path: string,
    init: { method?: string; body?: unknown } = {},
    op = 'api',
  ): Promise<ApiAnswer & { retriedAfterNetwork: boolean; slot: number }> {
    let retried = false;
    for (let attempt = 0; attempt < 4; attempt++) {
      const live = this.live();
      if (live.length === 0) {
        await sleep(200);
        continue;
      }
      const slot = live[Math.floor(this.rng() * live.length)]!;
      const answer = await this.api(slot, path, init, op);
      if (answer.status !== 0) return { ...answer, retriedAfterNetwork: retried, slot: slot.index };
      retried = true;
      await sleep(100);
    }
    return { status: 0, body: undefined, headers: new Headers(), retriedAfterNetwork: retried, slot: -1 };
  }

  private async probe(slot: Slot): Promise<void> {
    while (this.running) {
      if (slot.up && slot.proc) {
        const start = Date.now();
        let status = 0;
        try {
          const answer = await callApi(
            slot.proc.internalUrl,
            `/internal/connections/${PROVIDER}/probe-${slot.index}/token`,
            { timeoutMs: 5000 },
          );
          status = answer.status;
          this.record('probe', slot.index, start, status, answer.body);
          this.judgeToken({ id: `probe-${slot.index}` } as Conn, answer, 'probe');
        } catch {
          this.record('probe', slot.index, start, 0, undefined);
        }
        this.probes.push({ slot: slot.index, end: Date.now(), status });
      }
      await sleep(100);
    }
  }

  private async worker(): Promise<void> {
    while (this.running) {
      const free = this.conns.filter((c) => !c.busy);
      if (free.length === 0) {
        await sleep(20);
        continue;
      }
      const conn = free[Math.floor(this.rng() * free.length)]!;
      conn.busy = true;
      try {
        await this.operate(conn);
      } finally {
        conn.busy = false;
      }
      await sleep(10);
    }
  }

  private async operate(conn: Conn): Promise<void> {
    const r = this.rng();
    if (conn.state !== 'active') return r < 0.5 ? this.opPut(conn) : this.opFlow(conn);
    if (r < 0.4) return this.opToken(conn, false);
    if (r < 0.6) return this.opToken(conn, true);
    if (r < 0.67) return this.opStorm(conn);
    if (r < 0.75) return this.opPut(conn);
    if (r < 0.8) return this.opFlow(conn);
    if (r < 0.93) return this.opDelete(conn);
    return this.opRace(conn);
  }

  private judgeToken(conn: Conn, answer: ApiAnswer, op: string): void {
    if (answer.status === 409 || answer.status === 404)
      this.violate(
        'active connection answered ' + answer.status,
        `${this.named(conn)} (${op}) at +${(this.elapsed() / 1000).toFixed(1)}s: ${answer.body?.code}: ${answer.body?.detail ?? ''}`,
      );
  }

  private async opToken(conn: Conn, force: boolean): Promise<void> {
    const op = force ? 'force_refresh' : 'token';
    const answer = await this.lb(
      `/internal/connections/${PROVIDER}/${conn.id}/token${force ? '?force_refresh=true' : ''}`,
      {},
      op,
    );
    this.judgeToken(conn, answer, op);
  }

  /** Three forced refreshes of one connection at once, one through each process. */
  private async opStorm(conn: Conn): Promise<void> {
    const live = this.live();
    const answers = await Promise.all(
      live.map((slot) =>
        this.api(slot, `/internal/connections/${PROVIDER}/${conn.id}/token?force_refresh=true`, {}, 'storm'),
      ),
    );
    for (const a of answers) this.judgeToken(conn, a, 'storm');
  }

  async opPut(conn: Conn): Promise<void> {
    const tokens = this.provider.mintFor(conn.id);
    for (let attempt = 0; attempt < 4; attempt++) {
      const answer = await this.lb(
        `/internal/connections/${PROVIDER}/${conn.id}`,
        {
          method: 'PUT',
          body: { access_token: tokens.access_token, refresh_token: tokens.refresh_token, expires_in: 3600 },
        },
        'put',
      );
      if (answer.status === 200 || answer.status === 201) {
        if (answer.status === 201) conn.created201++;
        this.ack(conn, `PUT ${answer.status}`);
        conn.state = 'active';
        conn.family = tokens.family;
        return;
      }
      await sleep(300);
    }
    conn.state = 'uncertain';
  }

  /** The browser flow, its three steps on three (random) processes. */
  private async opFlow(conn: Conn): Promise<void> {
    const pick = () => {
      const live = this.live();
      return live[Math.floor(this.rng() * live.length)];
    };
    const [a, b, c] = [pick(), pick(), pick()];
    if (!a || !b || !c) return;
    const link = await this.api(
      a,
      '/internal/connect-sessions',
      {
        method: 'POST',
        body: { provider: PROVIDER, connection_id: conn.id, return_to: `${TEST_RETURN_ORIGIN}/integrations` },
      },
      'connect-session',
    );
    if (link.status !== 201) return;
    const browser = new TestBrowser();
    const url = new URL(link.body.url as string);
    const auth = await this.page(
      browser,
      `${b.proc!.publicUrl}${url.pathname}${url.search}`,
      'auth',
      b.index,
    );
    if (auth.status !== 302 || !auth.location) return;
    const state = new URL(auth.location).searchParams.get('state') ?? '';
    const code = this.provider.codeFor(conn.id);
    const before = new Set(this.provider.familiesOf(conn.id));
    const callback = await this.page(
      browser,
      `${c.proc!.publicUrl}/callback/${PROVIDER}?code=${code}&state=${state}`,
      'callback',
      c.index,
    );
    if (callback.status === 0) {
      conn.state = 'uncertain';
      return;
    }
    if (callback.status === 303 && callback.location) {
      const back = new URL(callback.location);
      if (back.searchParams.get('connected') === PROVIDER) {
        this.ack(conn, 'connect 303');
        conn.state = 'active';
        conn.family = this.provider.familiesOf(conn.id).find((f) => !before.has(f)) ?? conn.family;
      }
    }
  }

  private async page(browser: TestBrowser, url: string, op: string, slot: number) {
    const start = Date.now();
    try {
      const res = await browser.get(url);
      this.record(op, slot, start, res.status, undefined, true);
      return res;
    } catch {
      this.record(op, slot, start, 0, undefined, true);
      return { status: 0, location: null as string | null };
    }
  }

  private async opDelete(conn: Conn): Promise<void> {
    for (let attempt = 0; attempt < 4; attempt++) {
      const answer = await this.lb(
        `/internal/connections/${PROVIDER}/${conn.id}`,
        { method: 'DELETE' },
        'delete',
      );
      if (answer.status === 204 || (answer.status === 404 && (attempt > 0 || answer.retriedAfterNetwork))) {
        if (answer.status === 204) conn.deleted204++;
        this.markDeleted(conn, 'DELETE', [answer.slot]);
        return;
      }
      if (answer.status === 404) {
        this.violate(
          'active connection answered 404',
          `${this.named(conn)} (delete) at +${(this.elapsed() / 1000).toFixed(1)}s`,
        );
        this.markDeleted(conn, 'DELETE', [answer.slot]);
        return;
      }
      await sleep(300);
    }
    conn.state = 'uncertain';
  }

  private ack(conn: Conn, what: string): void {
    conn.lastAckAt = Date.now();
    conn.lastAck = what;
  }

  /** `c3 (last acknowledged: PUT 201 at +4.2s)`: evidence for a connection's breach. */
  private named(conn: Conn): string {
    return `${conn.id} (last acknowledged: ${conn.lastAck ?? 'none'} at ${this.at(conn.lastAckAt)})`;
  }

  private markDeleted(conn: Conn, how: string, by: number[]): void {
    this.ack(conn, `${how} on process ${by.join(' and ')}`);
    conn.deletedBy = by;
    conn.state = 'absent';
    conn.deletedFamily = conn.family;
    conn.deletedAt = Date.now();
    conn.family = undefined;
  }

  /** A forced refresh and a delete of one connection at once, through two processes. */
  private async opRace(conn: Conn): Promise<void> {
    const live = this.live();
    if (live.length < 2) return;
    const [x, y] = [live[0]!, live[live.length - 1]!];
    const refresh = this.api(
      x,
      `/internal/connections/${PROVIDER}/${conn.id}/token?force_refresh=true`,
      {},
      'race-refresh',
    );
    await sleep(Math.floor(this.rng() * 30));
    const deleted = await this.api(
      y,
      `/internal/connections/${PROVIDER}/${conn.id}`,
      { method: 'DELETE' },
      'race-delete',
    );
    await refresh;
    const how = 'DELETE raced with a forced refresh';
    if (deleted.status === 204) {
      conn.deleted204++;
      this.markDeleted(conn, how, [y.index, x.index]);
    } else if (deleted.status === 404) {
      this.violate('active connection answered 404', `${this.named(conn)} (race-delete)`);
      this.markDeleted(conn, how, [y.index, x.index]);
    } else conn.state = 'uncertain';
  }
}

function clientId(slot: number): string {
  return `${PROVIDER}-client-${slot}`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** CHAOS_SEED and CHAOS_SECONDS (for `npm run chaos`) override a scenario's defaults. */
export function runSettings(
  defaultSeed: number,
  defaultSeconds: number,
): { seed: number; durationMs: number } {
  const seed = Number(process.env.CHAOS_SEED ?? defaultSeed);
  const seconds = Number(process.env.CHAOS_SECONDS ?? defaultSeconds);
  return { seed, durationMs: seconds * 1000 };
}
