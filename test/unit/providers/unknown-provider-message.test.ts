import { Provider } from '../../../src/providers/provider-definition';
import { ProviderRegistry } from '../../../src/providers/provider-registry';
import { unknownProviderMessage } from '../../../src/providers/unknown-provider-message';

function registry(enabled: string[], disabled: string[] = []): ProviderRegistry {
  const provider = (id: string, on: boolean) => ({ id, enabled: on }) as unknown as Provider;
  return new ProviderRegistry([
    ...enabled.map((id) => provider(id, true)),
    ...disabled.map((id) => provider(id, false)),
  ]);
}

describe('unknownProviderMessage: a provider_not_found that says what to do', () => {
  it('suggests the closest enabled id for a typo, and lists the enabled ones', () => {
    expect(unknownProviderMessage(registry(['sandbox', 'acme-eu']), 'sandbx')).toBe(
      'Unknown provider "sandbx". Did you mean "sandbox"? Provider ids are case-sensitive (lower case). Enabled providers: sandbox, acme-eu.',
    );
  });

  it('names the id in the right case when only the case differs', () => {
    expect(unknownProviderMessage(registry(['sandbox']), 'SandBox')).toContain(
      'Did you mean "sandbox"? Provider ids are case-sensitive',
    );
  });

  it('suggests nothing when no id is close, and still lists the enabled ones', () => {
    const message = unknownProviderMessage(registry(['sandbox', 'acme']), 'zzzzzz');
    expect(message).not.toContain('Did you mean');
    expect(message).toContain('Enabled providers: sandbox, acme.');
  });

  it('says how to enable one when none is enabled', () => {
    expect(unknownProviderMessage(registry([], ['acme']), 'acm')).toContain(
      'No provider is enabled: set <PROVIDER>_CLIENT_ID and <PROVIDER>_CLIENT_SECRET',
    );
  });

  it('never echoes markup or control characters, and caps what it lists', () => {
    const many = Array.from({ length: 25 }, (_, i) => `p${i}`);
    const message = unknownProviderMessage(registry(many), '<script>\n');
    expect(message).toContain('Unknown provider "?script??".');
    expect(message).toContain('and 5 more (GET /internal/providers)');
  });
});
