import { parseTagFilters, requireConnectionId } from '../connections/connection-input';

export interface ListOptions {
  provider?: string;
  endUserId?: string;
  tags: Array<[string, string]>;
}

/**
 * `connections list [--provider P] [--end-user U] [--tag k:v]…`: the listing's filters, checked by
 * the same rules as the internal API's query (a bad one is a BrokerError invalid_request).
 */
export function parseListOptions(args: readonly string[]): ListOptions | { misuse: string } {
  let provider: string | undefined;
  let endUserId: string | undefined;
  const tags: string[] = [];
  for (let i = 0; i < args.length; i += 2) {
    const [flag, value] = [args[i], args[i + 1]];
    if (value === undefined) return { misuse: `${flag} needs a value` };
    if (flag === '--provider') provider = value;
    else if (flag === '--end-user') endUserId = requireConnectionId(value, 'end-user');
    else if (flag === '--tag') tags.push(value);
    else return { misuse: `unknown option ${flag}` };
  }
  return { provider, endUserId, tags: parseTagFilters(tags.length > 0 ? tags : undefined) };
}
