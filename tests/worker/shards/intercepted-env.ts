// The router's env with its shard stubs intercepted, for tests that make one shard busy, fail or race
// another request at a chosen call: the real Durable Objects answer everything else.
import { env } from "cloudflare:test";

export type StubCall = (...args: unknown[]) => unknown;

/**
 * `hook(shard, method, call)` answers what the router calls instead of `call` (the stub's own method),
 * or `call` itself to leave it be.
 */
export function interceptedEnv(
  hook: (shard: string | undefined, method: string | symbol, call: StubCall) => StubCall,
): typeof env {
  return {
    ...env,
    CUSTOMER_SHARDS: new Proxy(env.CUSTOMER_SHARDS, {
      get(namespace, property) {
        const value = Reflect.get(namespace, property, namespace);
        if (property !== "get") return typeof value === "function" ? value.bind(namespace) : value;
        return (shardId: DurableObjectId) =>
          new Proxy(namespace.get(shardId), {
            get(target, method) {
              const call = (target as unknown as Record<string | symbol, unknown>)[method] as StubCall;
              return hook(shardId.name, method, call);
            },
          });
      },
    }),
  } as typeof env;
}
