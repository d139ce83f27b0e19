import { Provider } from './provider-definition';

/** The providers of this deployment, built once at start-up by `loadProviderRegistry`. */
export class ProviderRegistry {
  private readonly byId: ReadonlyMap<string, Provider>;

  constructor(providers: Provider[]) {
    this.byId = new Map(providers.map((p) => [p.id, p]));
  }

  /** Known providers, enabled or not. */
  get(id: string): Provider | undefined {
    return this.byId.get(id);
  }

  all(): Provider[] {
    return [...this.byId.values()];
  }

  enabled(): Provider[] {
    return this.all().filter((p) => p.enabled);
  }
}
