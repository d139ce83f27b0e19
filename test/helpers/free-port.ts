import { randomInt } from 'node:crypto';
import net from 'node:net';

/**
 * Ports handed out here come from 20000–32767, below Linux's ephemeral range (32768–60999 by
 * default). A port probed here is free again the moment the probe closes, and something else binds
 * it later (a redis-server, a broker); had it come from the ephemeral range, any listen(0) or
 * outgoing connection in between (Chromium, oidc-provider, the fake providers, another worker)
 * could take it first and the later bind would fail with EADDRINUSE. Below that range only another
 * caller of this function competes, and a random start makes that unlikely; a taken port is skipped.
 * `highest` lowers the top of the range (a Redis Cluster node's bus port is its port + 10000).
 */
const LOW = 20_000;
const HIGH = 32_767;

export async function freePort(highest = HIGH): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = randomInt(LOW, highest + 1);
    if (await canBind(port)) return port;
  }
  throw new Error(`no free port found in ${LOW}-${highest} after 50 tries`);
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
