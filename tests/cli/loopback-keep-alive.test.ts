// The dev server's Node HTTP servers keep an idle keep-alive connection open past Node's default
// keep-alive timeout, so workerd can reuse a pooled connection to them at any time
// (cli/loopback-keep-alive.ts says why).
import http from "node:http";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { keepIdleConnectionsOpen } from "../../cli/loopback-keep-alive.ts";

const servers: http.Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

/** Sends GET requests on one raw connection, `idleMs` apart, and says what each got back. */
async function requestsOnOneConnection(port: number, idleMs: number): Promise<string[]> {
  const socket = net.connect(port, "127.0.0.1");
  await new Promise((resolve) => socket.once("connect", resolve));
  let received = "";
  let closed = false;
  socket.on("data", (chunk) => {
    received += chunk.toString();
  });
  socket.on("close", () => {
    closed = true;
  });
  const answers: string[] = [];
  const ask = async (path: string) => {
    received = "";
    if (!closed) socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n`);
    for (let waited = 0; waited < 2_000 && !received.includes("\r\n\r\nok") && !closed; waited += 20)
      await new Promise((resolve) => setTimeout(resolve, 20));
    answers.push(closed && !received ? "closed" : (received.split("\r\n")[0] ?? ""));
  };
  await ask("/first");
  await new Promise((resolve) => setTimeout(resolve, idleMs));
  await ask("/second");
  socket.destroy();
  return answers;
}

async function listening(server: http.Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as net.AddressInfo).port;
}

const answerOk = (_: http.IncomingMessage, response: http.ServerResponse) => response.end("ok");

describe("keepIdleConnectionsOpen", () => {
  it("keeps a connection idle for longer than Node's keep-alive timeout (5 s, closed at about 6 s) open for the next request", async () => {
    // Node's own default first, so the test shows the difference it makes.
    const plain = await listening(http.createServer(answerOk));
    keepIdleConnectionsOpen();
    const kept = await listening(http.createServer(answerOk));
    const [plainAnswers, keptAnswers] = await Promise.all([
      requestsOnOneConnection(plain, 6_600),
      requestsOnOneConnection(kept, 6_600),
    ]);
    expect(plainAnswers).toEqual(["HTTP/1.1 200 OK", "closed"]);
    expect(keptAnswers).toEqual(["HTTP/1.1 200 OK", "HTTP/1.1 200 OK"]);
  }, 20_000);

  it("installs once: a second call does not wrap the servers again", () => {
    keepIdleConnectionsOpen();
    const wrapped = http.createServer;
    keepIdleConnectionsOpen();
    expect(http.createServer).toBe(wrapped);
    const server = http.createServer(answerOk);
    expect([server.keepAliveTimeout, server.headersTimeout, server.requestTimeout]).toEqual([0, 0, 0]);
  });
});
