// What every scenario of `npm run bench` (bench/run.mjs) shares: the command line's options, the
// durations and sizes, the build under test, the secrets its brokers run with, one HTTP agent, the
// results being gathered and the log.
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dockerfileNodeOptions, makeAgent } from '../lib.mjs';

export const HERE = dirname(dirname(fileURLToPath(import.meta.url)));
export const ROOT = dirname(HERE);
const distArg = process.argv.slice(2).find((a) => a.startsWith('--dist='));
// Another build of the broker (e.g. an older commit's, for before/after); the default is ./dist.
export const DEPLOYED_NODE_OPTIONS = dockerfileNodeOptions(ROOT) ?? '';
export const DIST = distArg ? resolve(ROOT, distArg.slice(7)) : join(ROOT, 'dist');

export const argv = process.argv.slice(2);
export const flag = (name) => argv.includes(`--${name}`);
export const QUICK = flag('quick');
export const PROFILE = flag('profile');

// Durations (ms). The whole run stays under ~3 minutes plus the build.
export const T = QUICK
  ? { warm: 1000, max: 3000, fixed: 2000, phase: 2000 }
  : { warm: 2000, max: 10_000, fixed: 10_000, phase: 4000 };
export const CLIENTS = 50;
export const PROVIDER = 'bexio';
export const RETURN_TO = 'https://app.example.com/integrations';
// Token sizes of a typical opaque provider: 120-byte access token, 64-byte refresh token.
export const ACCESS_BYTES = 120;
export const REFRESH_BYTES = 64;
export const TOKEN_BYTES = ACCESS_BYTES + REFRESH_BYTES;
export const SCOPES = ['openid', 'offline_access', 'accounting'];

const INTERNAL_KEY = randomBytes(32).toString('base64url');
export const AUTH = { authorization: `Bearer ${INTERNAL_KEY}` };
export const SECRETS = {
  SESSION_SECRET: randomBytes(32).toString('base64url'),
  TOKEN_ENCRYPTION_KEYS: `bench:${randomBytes(32).toString('base64')}`,
  INTERNAL_API_KEYS: INTERNAL_KEY,
};
export const agent = makeAgent(256);
/** What the scenarios found: `scenarios[name]`, `memory` (measured alongside), `notes`, `profile`. */
export const results = { scenarios: {}, notes: [] };
export const log = (line) => console.log(`bench: ${line}`);
