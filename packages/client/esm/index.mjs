// The ES module entry: the CommonJS build's classes, re-exported, so `import` and `require` share
// one copy of each (`instanceof BrokerProblemError` holds whichever way it was loaded). Named one
// by one: `export *` would also export CommonJS's `__esModule` marker.
import client from '../dist/index.js';

export const { BrokerClient, BrokerProblemError, BrokerRequestError } = client;
