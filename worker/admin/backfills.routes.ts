// Admin routes for the backfills of derived tables (docs/scaling.md, "Product rows"): where each part of
// the customer store stands (`patron backfill status`), and a pass started again in every part
// (`patron backfill rerun <name>`), e.g. after a rollback to a version that did not write the table.
import { Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { requireAdminKey } from "../http/auth.ts";
import { notFound } from "../http/errors.ts";
import { type BackfillName, backfillNames, backfillStates, rerunBackfill } from "../jobs/backfills.repo.ts";
import { everyShard, shardCount, shardName, shardStub } from "../shards/shards.ts";

type BackfillContext = { env: AppEnv["Bindings"]; var: AppEnv["Variables"] };

/** Every backfill row of every part of the customer store: D1 ("d1"), or each shard ("shard-<i>"). */
async function backfillsView(c: BackfillContext) {
  const count = shardCount(c.env);
  const parts =
    count === 0
      ? [{ store: "d1", states: await backfillStates(c.var.db) }]
      : await Promise.all(
          Array.from({ length: count }, async (_, index) => ({
            store: shardName(index),
            states: await shardStub(c.env, index).backfills(),
          })),
        );
  const backfills = parts.flatMap(({ store, states }) =>
    states.map((state) => ({ ...state, store, pending: state.doneAt === null })),
  );
  return { backfills, pending: backfills.filter((backfill) => backfill.pending).length };
}

const isBackfillName = (name: string): name is BackfillName => (backfillNames as readonly string[]).includes(name);

export const backfillRoutes = new Hono<AppEnv>()
  .use("*", requireAdminKey)
  .get("/", async (c) => c.json({ data: await backfillsView(c) }))
  .post("/:name/rerun", async (c) => {
    const name = c.req.param("name");
    if (!isBackfillName(name))
      throw notFound(
        `No backfill is named ${JSON.stringify(name.slice(0, 100))}: the backfills are ${backfillNames.join(", ")}.`,
      );
    const count = shardCount(c.env);
    if (count === 0) await rerunBackfill(c.var.db, name);
    else await Promise.all(everyShard(c.env).map((shard) => shard.rerunBackfill(name)));
    return c.json({ data: await backfillsView(c) });
  });
