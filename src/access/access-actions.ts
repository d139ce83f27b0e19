/**
 * What a service key may be allowed to do (docs/least-privilege.md): `token` the token API,
 * `proxy` the proxy, `read` metadata and listing, `connect` connect sessions, `write` PUT and
 * PATCH, `delete` DELETE, `admin` providers, audit log and OpenAPI document.
 */
export const ACCESS_ACTIONS = ['token', 'proxy', 'read', 'connect', 'write', 'delete', 'admin'] as const;

export type AccessAction = (typeof ACCESS_ACTIONS)[number];

export function isAccessAction(value: unknown): value is AccessAction {
  return typeof value === 'string' && (ACCESS_ACTIONS as readonly string[]).includes(value);
}
