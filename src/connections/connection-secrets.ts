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
  return keyRing.seal(JSON.stringify(secrets), aadFor(provider, connectionId));
}

export function openSecrets(
  keyRing: KeyRing,
  provider: string,
  connectionId: string,
  record: Pick<StoredConnection, 'key_id' | 'sealed'>,
): ConnectionSecrets {
  try {
    return JSON.parse(
      keyRing.open({ keyId: record.key_id, data: record.sealed }, aadFor(provider, connectionId)),
    ) as ConnectionSecrets;
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
