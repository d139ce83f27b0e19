#!/usr/bin/env node
import 'dotenv/config';
import { ConfigError } from '../config/config-error';
import { loadConfig } from '../config/load-config';
import { presentConnection } from '../connections/connection-record';
import { generateKeyLine } from '../connections/key-ring';
import { BrokerError } from '../errors/broker-error';
import { CliContext, createCliContext } from './cli-context';
import { allConnections, keysStatus, rekey } from './keys-commands';
import { Progress } from './progress';
import { parseListOptions } from './list-options';
import { StoredConnection } from '../connections/connection-record';
import { unknownProviderMessage } from '../providers/unknown-provider-message';
import { loadProviderRegistry } from '../providers/load-registry';

const USAGE = `usage: oauth-broker <command>

  providers                               the enabled providers, their mode, scopes and redirect URI
  connections list [--provider P]         every connection's metadata, one line each
    [--end-user U] [--tag k:v]…           only those of end user U, carrying every tag given
  connections show P ID                   one connection's metadata (JSON, never secrets)
  connections delete P ID                 delete (and revoke at the provider, best effort)
  keys generate                           print a new kid:base64 key for TOKEN_ENCRYPTION_KEYS
  keys status                             connections sealed under each key id: "<kid> <count>"
  keys rekey | keys rotate                re-seal every connection under the first key (online, resumable)

Reads the same environment (and .env) as the broker.`;

/** The admin CLI (`npm run cli -- …`, `npx oauth-broker …`). Exit 0 on success, 1 on failure, 2 on misuse. */
async function run(argv: string[]): Promise<number> {
  const [group, command, ...rest] = argv;
  if (!group || group === 'help' || group === '--help' || group === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return group ? 0 : 2;
  }
  if (group === 'keys' && command === 'generate') {
    process.stdout.write(`${generateKeyLine()}\n`);
    return 0;
  }
  const known =
    group === 'providers' ||
    (group === 'connections' && ['list', 'show', 'delete'].includes(command ?? '')) ||
    (group === 'keys' && ['status', 'rekey', 'rotate'].includes(command ?? ''));
  if (!known) {
    process.stderr.write(`unknown command: ${argv.join(' ')}\n\n${USAGE}\n`);
    return 2;
  }

  const config = loadConfig(process.env);
  if (group === 'providers') return providers(config);
  const ctx = await createCliContext(config);
  try {
    if (group === 'connections') return await connections(ctx, command!, rest);
    if (command === 'status') {
      const counts = await keysStatus(ctx);
      for (const [kid, count] of [...counts.entries()].sort()) process.stdout.write(`${kid} ${count}\n`);
      return 0;
    }
    // Ctrl-C, or SIGTERM from a process manager, stops taking records and lets the re-seals under
    // way finish, so no lock is left behind and a second run resumes at once; a second signal
    // ends the process outright. The exit code is 128 + the signal's number, as a shell reports it.
    const interrupt = new AbortController();
    let stoppedBy: 'SIGINT' | 'SIGTERM' | undefined;
    const onSignal = (signal: 'SIGINT' | 'SIGTERM'): void => {
      stoppedBy = signal;
      process.stderr.write('\ninterrupted: finishing the re-seals under way; run it again to resume\n');
      interrupt.abort();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const report = await rekey(ctx, {
      progress: new Progress(`rekey to ${ctx.keyRing.activeKeyId}`),
      signal: interrupt.signal,
    });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.stdout.write(
      `connections: ${report.total}, resealed: ${report.resealed}, already under ${ctx.keyRing.activeKeyId}: ${report.alreadyCurrent}, ` +
        `rewritten meanwhile: ${report.changedMeanwhile}, failed: ${report.failed.length}, still under an old key: ${report.remaining}\n`,
    );
    for (const f of report.failed)
      process.stderr.write(`failed ${f.provider} ${f.connectionId}: ${f.reason}\n`);
    if (report.interrupted) return stoppedBy === 'SIGTERM' ? 143 : 130;
    return report.remaining === 0 && report.failed.length === 0 ? 0 : 1;
  } finally {
    await ctx.close();
  }
}

/** The owner, when there is one, after the columns a line always has (JSON-quoted: values are free text). */
function ownerColumns(c: StoredConnection): string {
  const user = c.end_user ? ` end_user=${c.end_user.id}` : '';
  const tags = Object.keys(c.tags).length > 0 ? ` tags=${JSON.stringify(c.tags)}` : '';
  return user + tags;
}

function providers(config: ReturnType<typeof loadConfig>): number {
  // The registry alone: no Redis needed to tell what is configured.
  const registry = loadProviderRegistry(config);
  for (const p of registry.all()) {
    const state = p.enabled ? 'enabled ' : 'disabled';
    const scopes = p.auth_mode === 'oauth2' ? p.scopes.join(p.scope_separator) || '-' : '-';
    const redirect = p.auth_mode === 'oauth2' ? p.redirect_uri : '-';
    process.stdout.write(
      `${p.id.padEnd(18)} ${state} ${p.auth_mode.padEnd(7)} scopes=${scopes} redirect=${redirect}\n`,
    );
  }
  return 0;
}

async function connections(ctx: CliContext, command: string, args: string[]): Promise<number> {
  if (command === 'list') {
    const options = parseListOptions(args);
    if ('misuse' in options) {
      process.stderr.write(`${options.misuse}\n\n${USAGE}\n`);
      return 2;
    }
    const filter = { endUserId: options.endUserId, tags: options.tags };
    for await (const page of allConnections(ctx, options.provider, filter)) {
      for (const c of page) {
        const m = presentConnection(c);
        process.stdout.write(
          `${c.provider} ${c.connection_id} ${m.status} expires_at=${m.expires_at ?? '-'} key_id=${c.key_id}${ownerColumns(c)}\n`,
        );
      }
    }
    return 0;
  }
  const [providerId, connectionId] = args;
  if (!providerId || !connectionId) {
    process.stderr.write(`usage: oauth-broker connections ${command} PROVIDER CONNECTION_ID\n`);
    return 2;
  }
  if (command === 'show') {
    const record = await ctx.connections.read(providerId, connectionId);
    process.stdout.write(`${JSON.stringify(presentConnection(record), null, 2)}\n`);
    return 0;
  }
  const provider = ctx.registry.get(providerId);
  if (!provider)
    throw new BrokerError('provider_not_found', unknownProviderMessage(ctx.registry, providerId));
  await ctx.connections.delete(provider, connectionId);
  process.stdout.write(`deleted ${providerId} ${connectionId}\n`);
  return 0;
}

run(process.argv.slice(2))
  .then((code) => process.exit(code))
  .catch((error: unknown) => {
    if (error instanceof ConfigError)
      process.stderr.write(`invalid configuration:\n${error.problems.map((p) => `  ${p}\n`).join('')}`);
    else if (error instanceof BrokerError) process.stderr.write(`${error.code}: ${error.detail}\n`);
    else process.stderr.write(`error: ${error instanceof Error ? error.message : 'unknown'}\n`);
    process.exit(1);
  });
