// The answer of a customer write on D1 while a migration's last pass has them paused
// (worker/shards/write-pause.ts): 503 with Retry-After, before anything is written.
import type { Db } from "../env.ts";
import { writesPausedAt } from "../shards/write-pause.ts";
import { unavailable } from "./errors.ts";

/** Seconds a client is told to wait before sending a paused write again. */
const pausedRetryAfterSeconds = 10;

/** Throws the paused write's 503 while customer writes on D1 are paused (a deployment on D1 only). */
export async function assertWritesOpen(db: Db): Promise<void> {
  const pausedAt = await writesPausedAt(db);
  if (pausedAt === null) return;
  throw unavailable(
    `Customer writes are paused while this deployment's customer data moves into customer shards (since ${pausedAt}): send this again in a few seconds. Once the deployment runs on the shards they go through there.`,
    pausedRetryAfterSeconds,
  );
}
