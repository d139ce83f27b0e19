/** The broker's whole configuration, validated once at start-up by `loadConfig`. */
export interface RedisConfig {
  url: string;
  sentinels?: Array<{ host: string; port: number }>;
  sentinelName?: string;
  clusterNodes?: Array<{ host: string; port: number }>;
}

export interface EncryptionKey {
  id: string;
  key: Buffer;
}

export interface Config {
  host: string;
  port: number;
  internalHost: string;
  internalPort: number;
  publicUrl: string;
  redis: RedisConfig;
  redisKeyPrefix: string;
  /**
   * Replicas that must hold a connection's write before it is acknowledged (WAIT), so a failover
   * cannot take back a stored rotated refresh token or undo a delete; 0 turns it off.
   */
  redisWaitReplicas: number;
  /** How long a write waits for those replicas; fewer in time make it a store failure (503). */
  redisWaitTimeoutMs: number;
  sessionSecrets: string[];
  encryptionKeys: EncryptionKey[];
  internalApiKeys: string[];
  allowedReturnUrls: string[];
  connectSessionTtlSeconds: number;
  refreshMarginSeconds: number;
  providersFile?: string;
  allowInsecureProviderUrls: boolean;
  providerTimeoutSeconds: number;
  /** Seconds the proxy waits for an upstream's response head (PROXY_TIMEOUT). */
  proxyTimeoutSeconds: number;
  /** Failures in a row that open a provider's circuit breaker. */
  circuitThreshold: number;
  /** Seconds an open circuit answers 502 at once before one probe is let through. */
  circuitOpenSeconds: number;
  shutdownTimeoutSeconds: number;
  refreshAhead: boolean;
  /** Undefined: each provider's own `keepalive_after` applies. 0: off. */
  keepaliveAfterSeconds?: number;
  sweepIntervalSeconds: number;
  /** Background refreshes one process runs at once, over all providers (SWEEP_CONCURRENCY). */
  sweepConcurrency: number;
  /** Background refreshes one process runs at once against any one provider (at most `sweepConcurrency`). */
  sweepConcurrencyPerProvider: number;
  logLevel: string;
  webhookUrl?: string;
  webhookSecret?: string;
  /** Requests per minute per IP on /auth and /callback; 0 turns the limit off. */
  rateLimitPerMinute: number;
  /** Failed internal-API authentications per minute per IP before 429; 0 turns it off. */
  authFailureLimitPerMinute: number;
  /** Express `trust proxy` for the public listener (which client IP rate limits count); unset trusts none. */
  trustProxy?: string;
  /** SERVICE_KEYS_FILE: scoped service keys (docs/least-privilege.md); read and checked at start-up. */
  serviceKeysFile?: string;
  /** AUDIT: whether the audit log is written (on by default). */
  audit: boolean;
  /** AUDIT_MAX_ENTRIES: entries the audit log keeps, oldest dropped first. */
  auditMaxEntries: number;
  /** The raw environment, for the provider registry's `<PROVIDER>_*` variables. */
  env: Readonly<Record<string, string | undefined>>;
}
