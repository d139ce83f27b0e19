import { BrokerError } from '../errors/broker-error';
import { ConnectionSecrets, StoredConnection } from './connection-record';
import { DecryptionError, KeyRing, Sealed } from './key-ring';

/**
 * The AAD binds a ciphertext to the connection it was sealed for. It comes from the connection
 * being asked for (the Redis key read), never from fields inside the stored record.
 */
export function aadFor(provider: string, connectionId: string): string {
  return `oauth-broker:v1:${provider}:${connectionId}`;
}

export function sealSecrets(
  keyRing: KeyRing,
  provider: string,
  connectionId: string,
  secrets: ConnectionSecrets,
): Sealed {
  return keyRing.seal(encodeSecrets(secrets), aadFor(provider, connectionId));
}

/**
 * The secrets as sealed: a JSON array `[access_token, refresh_token, token_type, api_key]`, null
 * where absent, trailing nulls left off. The array drops the field names an object would repeat in
 * every record (about 45 B of plaintext, 60 B of base64, per connection; docs/architecture.md, Redis).
 */
const SECRET_FIELDS = ['access_token', 'refresh_token', 'token_type', 'api_key'] as const;

export function encodeSecrets(secrets: ConnectionSecrets): string {
  const values: Array<string | null> = SECRET_FIELDS.map((field) => secrets[field] ?? null);
  while (values.length > 0 && values[values.length - 1] === null) values.pop();
  return JSON.stringify(values);
}

/** Either form: the array above, or the object records sealed before it hold. */
export function decodeSecrets(plaintext: string): ConnectionSecrets {
  const parsed: unknown = JSON.parse(plaintext);
  if (!Array.isArray(parsed)) return parsed as ConnectionSecrets;
  const secrets: ConnectionSecrets = {};
  SECRET_FIELDS.forEach((field, i) => {
    const value: unknown = parsed[i];
    if (typeof value === 'string') secrets[field] = value;
  });
  return secrets;
}

export function openSecrets(
  keyRing: KeyRing,
  provider: string,
  connectionId: string,
  record: Pick<StoredConnection, 'key_id' | 'sealed'>,
): ConnectionSecrets {
  try {
    return decodeSecrets(
      keyRing.open({ keyId: record.key_id, data: record.sealed }, aadFor(provider, connectionId)),
    );
  } catch (error) {
    throw new BrokerError(
      'decryption_failed',
      error instanceof DecryptionError && !keyRing.has(record.key_id)
        ? `The stored tokens are sealed with key "${record.key_id}", which is not in TOKEN_ENCRYPTION_KEYS.`
        : 'The stored tokens do not decrypt under any key of the ring.',
      { cause: error },
    );
  }
}
