export type ConnectionEventType =
  'connection.created' | 'connection.reauthorization_required' | 'connection.deleted';

export interface ConnectionEvent {
  type: ConnectionEventType;
  provider: string;
  connection_id: string;
  /** Why, for reauthorization_required. */
  reason?: string;
}

/** Where connection lifecycle events go (webhooks); the default drops them. */
export interface ConnectionEvents {
  emit(event: ConnectionEvent): void;
}

export const noEvents: ConnectionEvents = { emit: () => undefined };
