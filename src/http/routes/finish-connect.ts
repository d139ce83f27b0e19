import type { Request, Response } from 'express';
import { AuditLog } from '../../audit/audit-log';
import { OwnerChange } from '../../connections/connection-owner';
import { FlowState } from '../../connections/flow-store';
import { Provider } from '../../providers/provider-definition';
import { connectedPage } from '../pages/connect-pages';
import { sendPage } from '../pages/send-page';
import { withQuery } from '../return-to';

export interface FinishConnectDeps {
  /** The audit log; a completed connect is an entry, its actor the service that asked for the link. */
  audit?: AuditLog;
}

/** What the flow's connect session named of the owner; what it left out is kept. */
export function flowOwner(flow: FlowState): OwnerChange {
  return { end_user: flow.end_user, tags: flow.tags };
}

/**
 * The last step of every connect, once the connection is stored: back to the app's return_to (or
 * the connected page), then the audit entry (a failure to write it never undoes the connect).
 */
export function finishConnect(
  deps: FinishConnectDeps,
  req: Request,
  res: Response,
  provider: Provider,
  flow: FlowState,
): void {
  succeed(res, provider, flow);
  deps.audit?.record({
    actor: flow.actor ?? 'broker',
    action: 'connect',
    provider: provider.id,
    connection_id: flow.connection_id,
    status: res.statusCode,
    request_id: res.locals.requestId as string | undefined,
    ip: req.ip,
  });
}

function succeed(res: Response, provider: Provider, flow: FlowState): void {
  if (flow.return_to) {
    return void res.redirect(
      303,
      withQuery(flow.return_to, { connected: provider.id, connection_id: flow.connection_id }),
    );
  }
  sendPage(res, 200, connectedPage(provider.display_name, flow.connection_id));
}
