// Node HTTP servers created in this process keep idle keep-alive connections open instead of closing
// them after Node's default keep-alive timeout (5 s; Node 20 closes them about 6 s after the last
// response). Miniflare answers workerd's calls back into Node (a Durable Object's log line, a queue
// batch's outcome) on such a server, and workerd pools those connections: one idle that long could be
// closed by Node just as workerd reused it, and the call failed with "Network connection lost". The
// queue broker's call that logs a finished batch then rejected, and the local import queue delivered
// nothing more until a restart (a queued import of 47,034 orders stopped at 26,519 once its consumer
// invocations had grown to about 5 s). Miniflare releases after the Node 20 toolchain turn these
// timeouts off on that server themselves; this does it for the one pinned here.
import http from "node:http";

let installed = false;

/** From now on, every `http.createServer` of this process keeps idle connections open. */
export function keepIdleConnectionsOpen(): void {
  if (installed) return;
  installed = true;
  const createServer = http.createServer;
  http.createServer = ((...args: Parameters<typeof http.createServer>) => {
    const server = createServer(...args);
    server.keepAliveTimeout = 0;
    server.headersTimeout = 0;
    server.requestTimeout = 0;
    return server;
  }) as typeof http.createServer;
}
