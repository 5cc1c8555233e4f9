// The import consumer decides on its own which delivery of a batch is the last (and records the
// batch failed then), so its retry count must be the one the queue is configured with.
import { readFileSync } from "node:fs";
import path from "node:path";
import { expect, it } from "vitest";
import { importMaxRetries } from "../../worker/imports/retries.ts";

const root = path.resolve(import.meta.dirname, "../..");

it("the patron-import consumer in wrangler.toml retries as often as the worker expects", () => {
  const toml = readFileSync(path.join(root, "wrangler.toml"), "utf8");
  const consumers = toml.split(/^\[\[queues\.consumers\]\]$/m).slice(1);
  const consumer = consumers.find((block) => /^queue = "patron-import"$/m.test(block));
  expect(consumer, "no [[queues.consumers]] for patron-import").toBeDefined();
  expect(Number(consumer?.match(/^max_retries = (\d+)$/m)?.[1])).toBe(importMaxRetries);
  expect(toml).toMatch(/^\[\[queues\.producers\]\]\nqueue = "patron-import"\nbinding = "IMPORT_QUEUE"$/m);
});
