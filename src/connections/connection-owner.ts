/**
 * Who a connection belongs to: the app's own end user and free-form tags. Neither is secret; both
 * are stored beside the connection, shown in its metadata and carried by its webhook events.
 */
export interface EndUser {
  id: string;
  email?: string;
  display_name?: string;
  organization_id?: string;
}

export type Tags = Record<string, string>;

/** What a connection's owner fields hold as the API shows them. */
export interface ConnectionOwner {
  end_user: EndUser | null;
  tags: Tags;
}

/**
 * What a connect session, import or PATCH names: a field left out (undefined) keeps what the
 * connection holds; `end_user: null` or `tags: {}` clears it.
 */
export interface OwnerChange {
  end_user?: EndUser | null;
  tags?: Tags;
}

export const NO_OWNER: ConnectionOwner = Object.freeze({ end_user: null, tags: Object.freeze({}) });

/** The owner after `change`: what it names replaces, the rest is kept. */
export function applyOwnerChange(current: ConnectionOwner, change: OwnerChange | undefined): ConnectionOwner {
  return {
    end_user: change?.end_user !== undefined ? change.end_user : current.end_user,
    tags: change?.tags !== undefined ? change.tags : current.tags,
  };
}

/** A connection's owner fields, for a webhook event or a comparison. */
export function ownerOf(record: { end_user?: EndUser | null; tags?: Tags }): ConnectionOwner {
  return { end_user: record.end_user ?? null, tags: record.tags ?? {} };
}

/**
 * The hash values the owner fields are stored as: compact JSON, or undefined when empty (the
 * field is left out of the hash, so a connection without an owner costs no byte more).
 */
export function encodeEndUser(endUser: EndUser | null): string | undefined {
  if (!endUser) return undefined;
  // Fixed key order keeps the stored form stable whatever order the caller wrote.
  const compact: EndUser = { id: endUser.id };
  if (endUser.email !== undefined) compact.email = endUser.email;
  if (endUser.display_name !== undefined) compact.display_name = endUser.display_name;
  if (endUser.organization_id !== undefined) compact.organization_id = endUser.organization_id;
  return JSON.stringify(compact);
}

export function encodeTags(tags: Tags): string | undefined {
  const keys = Object.keys(tags).sort();
  if (keys.length === 0) return undefined;
  return JSON.stringify(Object.fromEntries(keys.map((k) => [k, tags[k]])));
}

/** A damaged owner field reads as none rather than failing the whole record. */
export function decodeEndUser(value: string | undefined): EndUser | null {
  if (!value) return null;
  try {
    const parsed: unknown = JSON.parse(value);
    if (!parsed || typeof parsed !== 'object' || typeof (parsed as EndUser).id !== 'string') return null;
    const source = parsed as Record<string, unknown>;
    const out: EndUser = { id: source.id as string };
    for (const field of ['email', 'display_name', 'organization_id'] as const) {
      if (typeof source[field] === 'string') out[field] = source[field];
    }
    return out;
  } catch {
    return null;
  }
}

export function decodeTags(value: string | undefined): Tags {
  if (!value) return {};
  try {
    const parsed: unknown = JSON.parse(value);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return {};
    return Object.fromEntries(
      Object.entries(parsed as Record<string, unknown>).filter(
        (e): e is [string, string] => typeof e[1] === 'string',
      ),
    );
  } catch {
    return {};
  }
}

/** Whether a connection's owner satisfies a listing's filters (all must match). */
export function ownerMatches(
  owner: ConnectionOwner,
  filter: { endUserId?: string; tags?: ReadonlyArray<readonly [string, string]> },
): boolean {
  if (filter.endUserId !== undefined && owner.end_user?.id !== filter.endUserId) return false;
  return (filter.tags ?? []).every(([k, v]) => Object.hasOwn(owner.tags, k) && owner.tags[k] === v);
}
