import { EndUser, Tags } from './connection-owner';

export type ConnectionEventType =
  'connection.created' | 'connection.reauthorization_required' | 'connection.deleted';

export interface ConnectionEvent {
  type: ConnectionEventType;
  provider: string;
  connection_id: string;
  /** Whom the connection belongs to, as its metadata shows (docs/end-users-and-tags.md). */
  end_user: EndUser | null;
  tags: Tags;
  /** Why, for reauthorization_required. */
  reason?: string;
}

/** Where connection lifecycle events go (webhooks); the default drops them. */
export interface ConnectionEvents {
  emit(event: ConnectionEvent): void;
}

export const noEvents: ConnectionEvents = { emit: () => undefined };
