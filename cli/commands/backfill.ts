// `patron backfill status` and `patron backfill rerun <name>`: the backfills of derived tables that the
// nightly job fills page by page (docs/scaling.md, "Product rows"), in D1 or in every customer shard.
import type { Command } from "commander";
import { adminClient } from "../dev-vars.ts";
import { describeRetry, type IngestClient, IngestFailed } from "../import/client.ts";
import { workerUrl } from "../options.ts";

interface BackfillOptions {
  url?: string;
  key?: string;
}

interface BackfillsView {
  backfills: { name: string; store: string; cursor: string; doneAt: string | null; pending: boolean }[];
  pending: number;
}

/** One line per backfill and part of the store, as "customer_products  shard-3  pending (at c_0042…)". */
export function backfillLines(view: BackfillsView): string[] {
  if (view.backfills.length === 0) return ["no backfills: every derived table was written from the start"];
  return view.backfills.map(({ name, store, cursor, doneAt }) => {
    const state = doneAt
      ? `done (by the nightly run of ${doneAt})`
      : cursor
        ? `pending: the last pass reached ${cursor} (a run goes on from there, or starts again from the first customer)`
        : "pending: the next nightly run fills it";
    return `${name}  ${store}  ${state}`;
  });
}

export function register(program: Command): void {
  const backfill = program
    .command("backfill")
    .description("Backfills of derived tables, filled by the nightly job (docs/scaling.md, Product rows).");
  const withServer = (command: Command) =>
    command
      .option("--url <url>", "the worker (default: $PATRON_URL, else the local one on $PORT or 8787)", workerUrl)
      .option(
        "--key <key>",
        "admin key (default: $PATRON_ADMIN_KEY, else the local .dev.vars unless --url or $PATRON_URL names a worker on another machine)",
      );

  const run = async (
    command: Command,
    options: BackfillOptions,
    call: (client: IngestClient) => Promise<{ data: BackfillsView }>,
  ) => {
    const client = await adminClient(options, (message) => command.error(message), {
      retry: { maxAttempts: 3 },
      onRetry: (info) => console.error(describeRetry(info)),
    });
    try {
      const { data } = await call(client);
      for (const line of backfillLines(data)) console.log(line);
      return data;
    } catch (error) {
      if (!(error instanceof IngestFailed)) throw error;
      console.error(error.message);
      process.exitCode = 1;
      return null;
    }
  };

  const status = withServer(
    backfill.command("status").description("Where each backfill stands, in D1 or in each shard."),
  );
  status.action(async (options: BackfillOptions) => {
    await run(status, options, (client) => client.get<BackfillsView>("/v1/admin/backfills"));
  });

  const rerun = withServer(
    backfill
      .command("rerun")
      .argument("<name>", "the derived table: customer_products")
      .description(
        "Fill a derived table again from its source rows (after a rollback to a version that did not write it): readers use the source rows until the nightly job's next pass is done.",
      ),
  );
  rerun.action(async (name: string, options: BackfillOptions) => {
    const data = await run(rerun, options, (client) =>
      client.post<BackfillsView>(`/v1/admin/backfills/${encodeURIComponent(name)}/rerun`, {}),
    );
    if (data)
      console.log(
        `${data.pending} pending: the next nightly run fills them (start one now with POST /v1/admin/jobs/nightly, or from the console's Models page).`,
      );
  });
}
