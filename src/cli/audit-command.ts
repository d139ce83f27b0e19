import { AuditEntry } from '../audit/audit-entry';
import {
  AuditQuery,
  auditEnds,
  auditEntryMatches,
  readAuditAfter,
  readAuditLog,
} from '../audit/read-audit-log';
import { CliContext } from './cli-context';

export interface AuditOptions {
  query: Omit<AuditQuery, 'limit' | 'cursor'>;
  /** Entries to show before following; undefined: all that match (the default with --since). */
  limit?: number;
  follow: boolean;
  /** Poll interval of --follow (ms). */
  pollMs?: number;
  signal?: AbortSignal;
}

/** One line an entry: `at actor action provider connection_id status request_id ip` (`-` for none). */
export function auditLine(entry: AuditEntry): string {
  return [
    entry.at,
    entry.actor,
    entry.action,
    entry.provider ?? '-',
    entry.connection_id ?? '-',
    entry.status,
    `request_id=${entry.request_id ?? '-'}`,
    `ip=${entry.ip ?? '-'}`,
  ].join(' ');
}

/**
 * `audit`: the matching entries, newest last; with `follow`, then every new matching entry as it
 * comes (each shard polled from where it ended, so nothing is shown twice or skipped).
 */
export async function printAudit(
  ctx: Pick<CliContext, 'redis' | 'auditShardKey'>,
  options: AuditOptions,
  write: (line: string) => void,
): Promise<void> {
  // Where each shard ends before the history is read: following starts there.
  let after = options.follow ? await auditEnds(ctx.redis, ctx.auditShardKey) : [];
  const shown = new Set<string>();
  const history: AuditEntry[] = [];
  let cursor: string | undefined;
  const wanted = options.limit ?? Infinity;
  while (history.length < wanted) {
    const page = await readAuditLog(ctx.redis, ctx.auditShardKey, {
      ...options.query,
      cursor,
      limit: Math.min(1000, wanted - history.length),
    });
    history.push(...page.entries);
    if (page.nextCursor === null) break;
    cursor = page.nextCursor;
  }
  for (const entry of history.reverse()) {
    shown.add(entry.id);
    write(auditLine(entry));
  }
  if (!options.follow) return;
  while (!options.signal?.aborted) {
    await new Promise((r) => setTimeout(r, options.pollMs ?? 500));
    const next = await readAuditAfter(ctx.redis, ctx.auditShardKey, after);
    after = next.after;
    for (const entry of next.entries) {
      if (shown.has(entry.id) || !auditEntryMatches(entry, { ...options.query, limit: 1 })) continue;
      write(auditLine(entry));
    }
    shown.clear();
  }
}
