import { Logger, errorForLog } from '../observability/logger';
import { ProviderHttp } from '../oauth/provider-http';
import { revokeToken } from '../oauth/revoke-token';
import { Provider } from '../providers/provider-definition';
import { ConnectionSecrets } from './connection-record';

export interface BackgroundRevocationsDeps {
  http: ProviderHttp;
  logger: Logger;
}

/**
 * Token revocations (RFC 7009) sent in the background, best effort, each within PROVIDER_TIMEOUT:
 * for a deleted connection, and for tokens a refresh brought to a connection that no longer holds
 * them. `drain()` waits for those under way (graceful shutdown).
 */
export class BackgroundRevocations {
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly deps: BackgroundRevocationsDeps) {}

  revokeLater(provider: Provider, connectionId: string, secrets: ConnectionSecrets): void {
    if (provider.auth_mode !== 'oauth2' || !provider.revocation_url) return;
    const revocation = this.revoke(provider, connectionId, secrets).finally(() =>
      this.pending.delete(revocation),
    );
    this.pending.add(revocation);
  }

  async drain(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }

  private async revoke(provider: Provider, connectionId: string, secrets: ConnectionSecrets): Promise<void> {
    try {
      const token = secrets.refresh_token
        ? { value: secrets.refresh_token, hint: 'refresh_token' as const }
        : secrets.access_token
          ? { value: secrets.access_token, hint: 'access_token' as const }
          : undefined;
      if (!token) return;
      const ok = await revokeToken(this.deps.http, provider, token);
      this.deps.logger.info(
        { provider: provider.id, connection_id: connectionId, revoked: ok },
        'revocation sent',
      );
    } catch (error) {
      this.deps.logger.warn(
        { provider: provider.id, connection_id: connectionId, err: errorForLog(error) },
        'revocation failed',
      );
    }
  }
}
