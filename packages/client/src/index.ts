/** `import { BrokerClient } from '@oauth-broker/client'`: the typed client of the internal API. */
export { BrokerClient } from './broker-client';
export type { BrokerClientOptions, GetTokenOptions, ListConnectionsOptions } from './broker-client';
export { BrokerProblemError, BrokerRequestError } from './broker-problem-error';
export type * from './types';
