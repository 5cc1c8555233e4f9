// `patron shards migrate`: moves a single-database deployment's customer data into customer shards
// (docs/scaling.md, from one database to shards), one server step at a time with a progress bar, then
// checks every customer table's rows against D1's and says how to switch the deployment over.
// `patron shards reshard --to <n>`: grows the shards (docs/scaling.md, resharding): walks and prepares
// them under the old count and says how to switch; run again after the switch, it finishes.
// `patron shards rebalance`: moves each region held away from its home shard (its account key's; for
// store-only customers and guests their card's, email's, phone's or order's) there (docs/scaling.md,
// rebalancing), a page of one shard per server step, with a progress bar.
// `patron shards status`: each shard's customers and stored bytes against what one shard can store.
import type { Command } from "commander";
import { scannedTable } from "../../worker/core/shards/catch-up.ts";
import { maxShards } from "../../worker/core/shards/placement.ts";
import { reshardNext, type ShardsOverview } from "../../worker/core/shards/status.ts";
import type { RebalanceView } from "../../worker/shards/rebalance-view.ts";
import { adminClient, talksToLocalWorker } from "../dev-vars.ts";
import { BatchRejected, IngestFailed } from "../import/client.ts";
import { formatDuration, progressBar } from "../import/progress.ts";
import { wholeNumber, workerUrl } from "../options.ts";

interface MigrateOptions {
  url?: string;
  key?: string;
  shards: number;
  limit: number;
  discardShardData?: boolean;
  full?: boolean;
  pauseWrites?: boolean;
}

export interface MigrationView {
  shards: number;
  mode: "full" | "catch_up";
  phase: "collect" | "prune" | "copy" | null;
  since: string | null;
  cursor: string | null;
  visited: number;
  /** Customers the pass visits: D1's (full), the changed ones (catching up). */
  total: number;
  regions: number;
  customers: number;
  changed: number;
  pruned: number;
  done: boolean;
  /** When the pass began: before this run when it continues a pass an earlier run stopped. */
  startedAt?: string;
}

/** Where a catch-up pass is before it copies: finding D1's changes, then checking each shard for erased customers. */
export function catchUpStage(step: Pick<MigrationView, "phase" | "since" | "cursor" | "shards" | "changed">): string {
  if (step.phase === "prune")
    return `${step.changed} customers changed; checking shard ${Number((step.cursor ?? "0").split(":")[0]) + 1} of ${step.shards} for customers D1 erased…`;
  return `catching up: finding the customers D1 changed since ${step.since} (${scannedTable(step.cursor)})…`;
}

/**
 * What a finished pass did, in one line; `ms`: this run's time, begun at `runStartedAt`. The counts are
 * the pass's: of a pass an earlier run began (and Ctrl-C stopped), they include that run's, and the line
 * says so rather than credit this run's time with them.
 */
export function migrationSummary(step: MigrationView, ms: number, runStartedAt = Number.POSITIVE_INFINITY): string {
  const begun = step.startedAt === undefined ? Number.NaN : Date.parse(step.startedAt);
  const took =
    begun < runStartedAt
      ? `: the pass began at ${step.startedAt}, in an earlier run, and this run took ${formatDuration(ms)}`
      : ` in ${formatDuration(ms)}`;
  if (step.mode === "catch_up")
    return (
      `caught up on what D1 wrote since ${step.since}: ${step.changed} changed customers, ` +
      `${step.regions} identity regions copied again (${step.customers} customers), ` +
      `${step.pruned} erased ${step.pruned === 1 ? "customer" : "customers"} dropped${begun < runStartedAt ? "" : ","}${took}`
    );
  return (
    `visited ${step.visited} customers and copied ${step.regions} identity regions (${step.customers} customers) ` +
    `into ${step.shards} shards${took}`
  );
}

export interface StatusView {
  writesPausedAt: string | null;
  counts: { d1: Record<string, number>; shards: Record<string, number>[] };
  /** Rows D1 wrote after the pass started: orders, customers, identities, suppressions (erasures). */
  changedSince: Record<string, number>;
}

/** What D1 wrote while the pass ran, as "3 orders, 1 suppressions"; empty when nothing. */
export function changesText(changed: Record<string, number>): string {
  return Object.entries(changed)
    .filter(([, n]) => n > 0)
    .map(([table, n]) => `${n} ${table}`)
    .join(", ");
}

/** Every table whose rows in the shards differ from D1's, as "table: d1 vs shards". */
export function countMismatches(counts: StatusView["counts"]): string[] {
  const summed: Record<string, number> = {};
  for (const shard of counts.shards)
    for (const [table, n] of Object.entries(shard)) summed[table] = (summed[table] ?? 0) + n;
  return Object.entries(counts.d1)
    .filter(([table, n]) => (summed[table] ?? 0) !== n)
    .map(([table, n]) => `${table}: ${n} in D1, ${summed[table] ?? 0} in the shards`);
}

/** Customers per second over `ms`, shown once a second has passed ("–" before: one step says nothing). */
export function migrationRate(customers: number, ms: number): string {
  return ms >= 1000 ? String(Math.round((customers * 1000) / ms)) : "–";
}

/** What to do once the copy checks: the local worker reads its settings from .dev.vars, a deployment from wrangler.toml. */
/** The answer of `POST /v1/admin/shards/migrate/writes`. */
export interface WritesView {
  writesPausedAt: string | null;
  /** What the pause was before this request (null: writes were open). */
  wasPausedAt?: string | null;
  pauseSeenWithinSeconds: number;
}

/** What `resume-writes` says: whether writes were paused, and since when. */
export function resumeText(view: WritesView): string {
  if (view.wasPausedAt === null) return "Customer writes on D1 were not paused: nothing changed.";
  // A worker from before `wasPausedAt` does not say whether they were.
  if (view.wasPausedAt === undefined)
    return "Customer writes on D1 are open again (every Worker sees it within a few seconds).";
  return `Customer writes on D1 are open again, paused since ${view.wasPausedAt} (every Worker sees it within ${view.pauseSeenWithinSeconds} s).`;
}

/** What `--pause-writes` says before the pass: since when, and how long it waits for every Worker to see it. */
export function pauseText(pausedAt: string, waitSeconds: number): string {
  return `Customer writes on D1 paused since ${pausedAt}: order batches, identify calls and erasures are answered 503 with Retry-After, import batches wait in the queue, no nightly run starts, shoppers' events add no browse days. Waiting ${waitSeconds} s for every Worker to see it.`;
}

/** A nightly run as GET /v1/admin/jobs/nightly lists it (the fields the pause waits on). */
export interface NightlyRunView {
  runId: string;
  status: string;
  processed: number;
  startedAt: string | null;
}

/** Statuses of a run that has stopped writing. */
const stoppedRunStatuses = new Set(["done", "errored", "terminated"]);

/** The nightly runs still writing (none start once the pause is seen, so these began before it). */
export function runsStillWriting(runs: readonly NightlyRunView[]): NightlyRunView[] {
  return runs.filter((run) => !stoppedRunStatuses.has(run.status));
}

/** What `--pause-writes` says while it waits for a nightly run that began before the pause. */
export function waitingForRunText(run: NightlyRunView): string {
  return `Nightly run ${run.runId} (started ${run.startedAt ?? "just now"}) is still writing scores: waiting for it to finish before the pass (${run.processed} customers scored so far; Ctrl-C stops waiting, and the pause stays until resume-writes).`;
}

/** What a paused migration says after its check passed: the pause holds until the switch, or until resumed. */
export function pausedNote(): string {
  return "Customer writes stay paused on D1 until the deployment runs on the shards, where they go through. To call the switch off instead: npx patron shards resume-writes.";
}

/**
 * Said after a pass made while writes were open: what arrives before the switch stays in D1 only.
 * A quiet deployment (a local one, or feeds stopped) may switch; a live one pauses for a last pass.
 */
export const unpausedNote =
  "Writes were not paused: an order or erasure that arrives before the switch stays in D1 only. If the order feeds are running, run the command again with --pause-writes first (it copies again only what D1 changed since this pass started), then switch.";

/** Said when a pass fails after its pause was answered: the pause outlives the command. */
export const stillPausedNote =
  "Customer writes stay paused on D1 (orders are answered 503 with Retry-After): run the same command again to finish the pass, or npx patron shards resume-writes to let them in on D1.";

/** Said when Ctrl-C, or a failure with no answer, stops a pass whose pause was asked for: it may hold. */
export const failedWhilePausedNote =
  "Customer writes stay paused on D1 (orders are answered 503 with Retry-After) if the pause got through: run the same command again to finish the pass, or npx patron shards resume-writes to let them in on D1.";

/** Said when Ctrl-C stops a pass: the worker keeps where it got to. */
export const stoppedNote =
  "Stopped. The pass is kept on the worker where it got to: run the same command again to continue it from the last step the worker finished.";

/** Said when Ctrl-C stops the check after a finished pass. */
export const stoppedCheckingNote =
  "Stopped while checking the copy: the pass itself is done. Run the command again: it starts a catch-up pass, which copies only what D1 changed since this one began, and checks the copy at its end.";

/** Said when Ctrl-C stops a pass that paused writes: the pause outlives the command. */
export const stoppedWhilePausedNote = `Stopped. ${failedWhilePausedNote}`;

export function switchInstruction(shards: number, local: boolean): string {
  const where = local
    ? `SHARD_COUNT=${shards} in .dev.vars and restart npm start`
    : `SHARD_COUNT = "${shards}" in wrangler.toml [vars] and deploy (npm run deploy)`;
  return `Now set ${where}; D1's copy stays until you delete it.`;
}

interface ReshardView {
  from: number;
  to: number;
  phase: "draining" | "copying" | "prepared" | "cleaning" | "done";
  scanned: number;
  total: number;
  written: number;
  removed: number;
  drained: number;
  drainMoves: number;
  drainPasses: number;
  running: number;
  done: boolean;
  /** When it finished (the status's record; a step's answer before the end has null). */
  finishedAt?: string | null;
}

/** What a reshard's progress bar counts in its phase. */
function reshardUnit(step: ReshardView): string {
  if (step.phase === "draining") return `customers visited (pass ${step.drainPasses})`;
  if (step.phase === "copying") return "rows walked";
  return step.from > step.to ? "shards finished" : "entries checked";
}

/** The note beside a reshard's progress bar. */
function reshardNote(step: ReshardView): string {
  if (step.phase === "draining") return `${step.written} moved`;
  if (step.phase === "copying") return `${step.written} entries written`;
  return `${step.removed} removed`;
}

/** What to do once the shards are prepared: switch the deployment to the new count, then run again. */
export function reshardSwitchInstruction(to: number, local: boolean): string {
  const where = local
    ? `SHARD_COUNT=${to} in .dev.vars and restart npm start`
    : `SHARD_COUNT = "${to}" in wrangler.toml [vars] and deploy (npm run deploy)`;
  // A deployment rolls out over seconds: a Worker still on the old version reads by the old count,
  // which finds every key until the finish removes the old shards' entries for the new ones.
  const then = local ? "then" : "then, once the new version serves everywhere,";
  return (
    `Now set ${where}, ${then} run patron shards reshard --to ${to} again to finish. ` +
    "Until the switch the shards serve shelves, lookups and events as before but take no orders (imports included), identify calls, erasures or suppression changes; after it they take them again."
  );
}

/** `patron shards status`'s answer: the overview, with the reshard and rebalance records when there are. */
export type ShardsStatusView = ShardsOverview & {
  reshard: ReshardView | null;
  rebalance: RebalanceView | null;
};

/** Bytes in decimal units, as the storage limit is given ("10 GB"). */
export function bytesText(bytes: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  // Rounded as it is shown (two decimals below 10, one from 10), so 999,999 bytes is "1 MB", not "1000 KB".
  const shown = (n: number) => Number(n.toFixed(n < 10 ? 2 : 1));
  while (shown(value) >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  // No trailing zeros: "1.5 KB", "245.8 KB", "10 GB".
  return `${shown(value)} ${units[unit]}`;
}

/** Rows as columns two spaces apart, each right-aligned but the last. */
function aligned(rows: readonly string[][]): string[] {
  const widths = (rows[0] ?? []).map((_, column) => Math.max(...rows.map((row) => (row[column] ?? "").length)));
  return rows.map((row) =>
    row.map((cell, column) => (column === row.length - 1 ? cell : cell.padStart(widths[column] ?? 0))).join("  "),
  );
}

const percent = (share: number) => `${(share * 100).toFixed(share < 0.1 ? 2 : 1)}%`;
const whole = (n: number) => n.toLocaleString("en-US");

/** `patron shards status` in words: a table of the shards, then what it means and what to do. */
export function shardsStatusText(view: ShardsStatusView): string[] {
  const limit = bytesText(view.limitBytes);
  const perCustomer = view.bytesPerCustomer === null ? "" : ` (${bytesText(view.bytesPerCustomer)} per customer)`;
  const lines = [
    `${view.count} customer shards: ${whole(view.totals.customers)} customers, ${bytesText(view.totals.bytes)} stored${perCustomer}`,
    "",
    ...aligned([
      ["shard", "customers", "stored", `of ${limit}`, "moves under way"],
      ...view.shards.map((part) => [
        String(part.shard),
        whole(part.customers),
        bytesText(part.bytes),
        percent(part.share),
        `${part.unfinishedMoves}${part.preparedFor === null ? "" : ` (prepared for ${part.preparedFor} shards)`}`,
      ]),
    ]),
    "",
  ];
  for (const { shard, error } of view.unanswered) lines.push(`Shard ${shard} did not answer: ${error}`);
  const capacity =
    view.customersPerShard === null
      ? ""
      : `; at this density one shard holds about ${whole(view.customersPerShard)} customers`;
  const fullest = view.fullest;
  if (fullest)
    lines.push(
      `The fullest, shard ${fullest.shard}, holds ${percent(fullest.share)} of the ${limit} one shard can store${capacity}.`,
    );
  if (view.spread !== null)
    lines.push(
      view.spreadOver < view.count
        ? `Of the ${view.spreadOver} shards that stay once the shrink is done, the one with the most customers holds ${view.spread.toFixed(2)}× their mean.`
        : `The shard with the most customers holds ${view.spread.toFixed(2)}× the mean.`,
    );
  const main = view.main;
  if (main) {
    lines.push(
      `The main database (D1) stores ${bytesText(main.bytes)}, ${percent(main.share)} of the ${bytesText(main.limitBytes)} D1 allows; it keeps ${whole(main.audienceMembers)} members of audiences with a webhook (about 268 bytes each).`,
    );
    if (main.nearlyFull)
      lines.push(
        "The main database is filling: the members of audiences with a webhook are what grows there with the customers; remove the webhook of an audience no longer needed, and its members go with it (docs/scaling.md, watching the shards).",
      );
  }
  // Not while a reshard is under way: finishing it is the next step.
  if (fullest && view.nearlyFull && (!view.reshard || view.reshard.done))
    lines.push(
      view.count < maxShards
        ? `Grow the shards before shard ${fullest.shard} fills: patron shards reshard --to ${Math.min(view.count * 2, maxShards)} (docs/scaling.md, resharding).`
        : `Shard ${fullest.shard} is filling, and ${maxShards.toLocaleString("en")} shards are the most a deployment may have: they cannot grow further (docs/scaling.md, calls per request).`,
    );
  lines.push(...underWay(view));
  return lines;
}

/** What is under way in the shards and the command that goes on with each: moves, a reshard, a rebalance pass. */
export function underWay(view: ShardsStatusView): string[] {
  const lines: string[] = [];
  // While a new count rolls out, shards not yet on the new version still run the old one.
  const behind = view.shards.filter((part) => part.serves !== view.count).map((part) => part.shard);
  if (behind.length > 0)
    lines.push(
      `${behind.length === 1 ? "Shard" : "Shards"} ${behind.join(", ")} still ${behind.length === 1 ? "runs" : "run"} another SHARD_COUNT than this Worker's ${view.count}: the new version has not reached ${behind.length === 1 ? "it" : "them"} yet.`,
    );
  if (view.totals.unfinishedMoves > 0)
    lines.push(
      `${whole(view.totals.unfinishedMoves)} moves between shards are under way; each shard finishes its own.`,
    );
  const failing = view.shards.filter((part) => (part.erasureScrubs?.failing ?? 0) > 0);
  if (failing.length > 0) {
    const scrubs = view.totals.failingErasureScrubs;
    const most = Math.max(...failing.map((part) => part.erasureScrubs.mostAttempts));
    const one = scrubs === 1;
    lines.push(
      `${whole(scrubs)} ${one ? "erasure's scrub" : "erasures' scrubs"} of the other shards ${one ? "fails" : "fail"} ` +
        `(in ${failing.length === 1 ? "shard" : "shards"} ${failing.map((part) => part.shard).join(", ")}; ` +
        `at most ${most} ${most === 1 ? "pass" : "passes"} failed): ${one ? "it is" : "they are"} tried again, up to once a day, ` +
        `and a shard keeping one is not retired; ${failing.length === 1 ? "its" : "their"} logs say why (docs/scaling.md, erasure and export across shards).`,
    );
  }
  const reshard = view.reshard;
  if (reshard && !reshard.done) {
    lines.push(
      `A reshard from ${reshard.from} to ${reshard.to} shards is under way (${reshard.phase}): ${reshardNext(reshard, reshard.running)}.`,
    );
  }
  if (view.rebalance && !view.rebalance.done)
    lines.push(
      `A rebalance pass is under way (${whole(view.rebalance.scanned)} of ${whole(view.rebalance.total)} customers visited): run patron shards rebalance to finish it.`,
    );
  // A grow finished and no pass began after it: the new shards hold only the customers created since.
  const grownAt = reshard?.done && reshard.to > reshard.from ? reshard.finishedAt : null;
  if (reshard && grownAt && (!view.rebalance || view.rebalance.startedAt < grownAt))
    lines.push(
      `The grow from ${reshard.from} to ${reshard.to} shards finished and no rebalance pass has run since: the customers whose home is a new shard are still held in the old ones. Run patron shards rebalance to move them.`,
    );
  return lines;
}

/** The end of a rebalance pass, in words: what moved, and what was left and why. */
export function rebalanceSummary(
  view: Pick<RebalanceView, "count" | "scanned" | "moved" | "moves" | "busy" | "tooLarge">,
  took: string,
): string[] {
  const n = (value: number) => value.toLocaleString("en-US");
  const lines = [
    `visited ${n(view.scanned)} customers in ${view.count} shards: moved ${n(view.moved)} to their home shard, in ${n(view.moves)} moves (${took})`,
  ];
  const left = (count: number) => `${n(count)} ${count === 1 ? "customer was" : "customers were"} left where they are`;
  if (view.busy > 0)
    lines.push(
      `${left(view.busy)}: a move between shards held them, or a page had spent the calls it may make. Run the command again later.`,
    );
  if (view.tooLarge > 0)
    lines.push(
      `${left(view.tooLarge)}: their identifiers connect more orders than one move takes (a placeholder identifier?).`,
    );
  return lines;
}

/**
 * A refusal from the worker (an HTTP error, retries that ran out, a request it found invalid) as one
 * message on stderr and exit code 1. Anything else is a fault of the command and is thrown.
 */
function reportRefusal(error: unknown): void {
  if (error instanceof BatchRejected)
    console.error(
      [error.message, ...error.issues.map((issue) => `  ${issue.path.join(".")}: ${issue.message}`)].join("\n"),
    );
  else if (error instanceof IngestFailed) console.error(error.message);
  else throw error;
  process.exitCode = 1;
}

/** How often `--pause-writes` asks after a nightly run it waits for. */
const runPollMs = 10_000;

const urlHelp = "the worker (default: $PATRON_URL, else the local one on $PORT or 8787)";
const adminKeyHelp =
  "admin key (default: $PATRON_ADMIN_KEY, else the local .dev.vars unless --url or $PATRON_URL names a worker on another machine)";

/** "shard 5", or "shards 4 to 5": the shards from `first` to `last`. */
function shardsNamed(first: number, last: number): string {
  return first === last ? `shard ${first}` : `shards ${first} to ${last}`;
}

export function register(program: Command): void {
  const shards = program.command("shards").description("Customer shards (docs/scaling.md).");
  shards
    .command("migrate")
    .description(
      "Copy a single-database deployment's customers into customer shards, check the copy, and say how to switch over.",
    )
    .requiredOption(
      "--shards <n>",
      "number of customer shards (SHARD_COUNT after the switch)",
      wholeNumber(1, maxShards),
    )
    .option("--url <url>", urlHelp, workerUrl)
    .option("--key <key>", adminKeyHelp)
    .option(
      "--limit <n>",
      "customers visited per request (1–500; a request copies at most 100: D1's queries per invocation)",
      wholeNumber(1, 500),
      100,
    )
    .option(
      "--discard-shard-data",
      "start a new pass even when the shards stored data of their own after the last pass (a deployment switched to them and back): that data is lost",
    )
    .option(
      "--full",
      "after a finished pass, empty the shards and copy D1 whole again instead of copying only what D1 changed since that pass started",
    )
    .option(
      "--pause-writes",
      "for the last pass: first pause customer writes on D1 (answered 503 with Retry-After until the deployment runs on the shards, or until resume-writes), so nothing changes behind the copy",
    )
    .action(async (options: MigrateOptions, command: Command) => {
      const client = await adminClient(options, (message) => command.error(message));
      const started = Date.now();
      let bar: ReturnType<typeof progressBar> | null = null;
      // Where the pause is: not asked for, asked (no answer yet), or held (answered).
      let pausing: "no" | "asked" | "held" = "no";
      // Ctrl-C (or a SIGTERM) stops the command, not the pass: the worker keeps the pass's cursor, so the
      // same command continues it. From the pause's request on, the pause outlives the command too: said.
      // Once the pass is done, a stop comes during the check of the copy: the pass needs no continuing.
      let passDone = false;
      const stopped = (signal: NodeJS.Signals) => {
        bar?.stop();
        const note = passDone ? stoppedCheckingNote : pausing === "no" ? stoppedNote : stoppedWhilePausedNote;
        console.error(`\n${note}${passDone && pausing !== "no" ? ` ${failedWhilePausedNote}` : ""}`);
        process.exit(signal === "SIGTERM" ? 143 : 130);
      };
      process.once("SIGINT", stopped);
      process.once("SIGTERM", stopped);
      try {
        if (options.pauseWrites) {
          pausing = "asked";
          const { data: pause } = await client.post<WritesView>("/v1/admin/shards/migrate/writes", { paused: true });
          pausing = "held";
          const wait = pause.pauseSeenWithinSeconds + 1;
          console.log(pauseText(pause.writesPausedAt ?? "now", wait));
          await new Promise((resolve) => setTimeout(resolve, wait * 1000));
          // No run starts while the pause holds; one that began before it finishes first, so none of its
          // scores land behind the copy.
          for (let said = ""; ; ) {
            const { data } = await client.get<{ runs: NightlyRunView[] }>("/v1/admin/jobs/nightly?limit=5");
            const [running] = runsStillWriting(data.runs);
            if (!running) break;
            const text = waitingForRunText(running);
            if (text !== said) console.log(text);
            said = text;
            await new Promise((resolve) => setTimeout(resolve, runPollMs));
          }
        }
        let step: MigrationView;
        // The rate counts this run's steps after its first, whose answer starts the clock: the first
        // step's time is unknown to the bar, and customers an earlier run visited are not this run's.
        let first: { visited: number; at: number } | null = null;
        let shown = "";
        do {
          ({ data: step } = await client.post<MigrationView>("/v1/admin/shards/migrate", {
            shards: options.shards,
            limit: options.limit,
            discardShardData: options.discardShardData === true,
            full: options.full === true,
          }));
          // A catch-up pass first finds what D1 changed (and what it erased), then copies those customers.
          if (step.mode === "catch_up" && step.phase !== "copy" && !step.done) {
            const stage = catchUpStage(step);
            if (stage !== shown) console.log(stage);
            shown = stage;
            continue;
          }
          first ??= { visited: step.visited, at: Date.now() };
          bar ??= progressBar(
            step.total,
            step.mode === "catch_up" ? "changed customers" : "customers",
            undefined,
            step.visited,
          );
          bar.update(step.visited, {
            rate: migrationRate(step.visited - first.visited, Date.now() - first.at),
            note: `${step.regions} regions copied`,
          });
        } while (!step.done);
        passDone = true;
        bar?.stop();
        console.log(migrationSummary(step, Date.now() - started, started));
        const { data: status } = await client.get<StatusView>("/v1/admin/shards/migrate?verify=true");
        const mismatches = countMismatches(status.counts);
        const changed = changesText(status.changedSince);
        if (mismatches.length > 0 || changed) {
          console.error("The shards do not hold what D1 holds now:");
          if (changed) console.error(`  D1 wrote ${changed} after this copy started`);
          for (const line of mismatches) console.error(`  ${line}`);
          console.error(
            status.writesPausedAt
              ? "Writes are paused; what changed began before the pause. Run the command again: it copies again only what D1 changed since this pass started."
              : "Run the command again with --pause-writes (or stop the order feeds and erasures first): it copies again only what D1 changed since this pass started (--full empties the shards and copies D1 whole).",
          );
          process.exitCode = 1;
          return;
        }
        console.log(`checked: every customer table has the same rows in the shards as in D1`);
        console.log(status.writesPausedAt ? pausedNote() : unpausedNote);
        console.log(switchInstruction(step.shards, talksToLocalWorker(options.url)));
      } catch (error) {
        bar?.stop();
        try {
          reportRefusal(error);
        } finally {
          // A pass that paused writes and then failed leaves them paused: said. A pause the worker refused
          // (an answer under 500: no migration recorded, already on the shards) paused nothing.
          const status = error instanceof BatchRejected || error instanceof IngestFailed ? error.status : null;
          if (pausing === "held") console.error(stillPausedNote);
          else if (pausing === "asked" && (status === null || status >= 500)) console.error(failedWhilePausedNote);
        }
      } finally {
        process.removeListener("SIGINT", stopped);
        process.removeListener("SIGTERM", stopped);
      }
    });

  shards
    .command("resume-writes")
    .description(
      "Open customer writes on D1 again after migrate --pause-writes, when the deployment stays on D1 (once it runs on the shards, the pause no longer applies).",
    )
    .option("--url <url>", urlHelp, workerUrl)
    .option("--key <key>", adminKeyHelp)
    .action(async (options: { url?: string; key?: string }, command: Command) => {
      const client = await adminClient(options, (message) => command.error(message));
      try {
        const { data } = await client.post<WritesView>("/v1/admin/shards/migrate/writes", { paused: false });
        console.log(resumeText(data));
      } catch (error) {
        reportRefusal(error);
      }
    });

  shards
    .command("reshard")
    .description(
      "Grow or shrink the customer shards to --to: prepare them under the old count (shrinking, every customer of the shards removed moves to the others first), then (run again after the switch) finish.",
    )
    .requiredOption(
      "--to <n>",
      "the new number of customer shards (SHARD_COUNT after the switch)",
      wholeNumber(1, maxShards),
    )
    .option("--url <url>", urlHelp, workerUrl)
    .option("--key <key>", adminKeyHelp)
    .option(
      "--limit <n>",
      "rows of one shard visited per request (1–5000; a shrink moves 1000 customers a request at most)",
      wholeNumber(1, 5000),
      1000,
    )
    .action(async (options: { url?: string; key?: string; to: number; limit: number }, command: Command) => {
      const client = await adminClient(options, (message) => command.error(message));
      const started = Date.now();
      let bar: ReturnType<typeof progressBar> | null = null;
      let barPhase: string | null = null;
      try {
        let step: ReshardView;
        for (;;) {
          ({ data: step } = await client.post<ReshardView>("/v1/admin/shards/reshard", {
            to: options.to,
            limit: options.limit,
          }));
          if (step.phase === "prepared" || step.phase === "done") break;
          // A drain pass starts its count again: a bar each.
          const barOf = step.phase === "draining" ? `draining ${step.drainPasses}` : step.phase;
          if (barPhase !== barOf) {
            bar?.stop();
            bar = progressBar(step.total, reshardUnit(step), undefined, step.scanned);
            barPhase = barOf;
          }
          bar?.update(step.scanned, { note: reshardNote(step) });
        }
        bar?.stop();
        const took = formatDuration(Date.now() - started);
        const shrinking = step.from > step.to;
        if (step.phase === "prepared") {
          const drained = shrinking
            ? `moved ${step.drained} customers out of ${shardsNamed(step.to, step.from - 1)} in ${step.drainMoves} moves (${step.drainPasses} ${step.drainPasses === 1 ? "pass" : "passes"}), `
            : "";
          console.log(
            `prepared ${step.from} shards for ${step.to}: ${drained}walked ${step.scanned} rows and wrote ${step.written} directory entries at their new homes (${took})`,
          );
          console.log(reshardSwitchInstruction(step.to, talksToLocalWorker(options.url)));
        } else if (shrinking) {
          console.log(
            `finished: the deployment runs ${step.to} shards; ${shardsNamed(step.to, step.from - 1)} ${step.from - step.to === 1 ? "is" : "are"} emptied (${step.removed} directory entries dropped with them) (${took})`,
          );
        } else {
          console.log(
            `finished: the deployment runs ${step.to} shards; the old ${step.from} shards' ${step.removed} entries for keys homed in the new ones are removed (${took})`,
          );
          console.log(
            "The customers whose home is a new shard (their account key's, or, without an account, their card's, email's or phone's, a guest's order's) are still held in the old ones (their shelf and lookups are forwarded once, and the new shards hold only the customers created since): run patron shards rebalance to move them.",
          );
        }
      } catch (error) {
        bar?.stop();
        reportRefusal(error);
      }
    });

  shards
    .command("status")
    .description(
      "Show each customer shard's customers and stored bytes against what one shard can store, and any reshard or rebalance under way.",
    )
    .option("--url <url>", urlHelp, workerUrl)
    .option("--key <key>", adminKeyHelp)
    .option("--json", "print the answer as JSON")
    .action(async (options: { url?: string; key?: string; json?: boolean }, command: Command) => {
      const client = await adminClient(options, (message) => command.error(message));
      try {
        const { data } = await client.get<ShardsStatusView>("/v1/admin/shards");
        if (options.json) console.log(JSON.stringify(data, null, 2));
        else for (const line of shardsStatusText(data)) console.log(line);
      } catch (error) {
        reportRefusal(error);
      }
    });

  shards
    .command("rebalance")
    .description(
      "Move each customer held away from their home shard there (after a reshard): the home of their account key, so their shelf is one shard call, or for store-only customers and guests of their card, email, phone or order, so new shards take their share; the deployment serves and takes writes throughout.",
    )
    .option("--url <url>", urlHelp, workerUrl)
    .option("--key <key>", adminKeyHelp)
    .option("--limit <n>", "customers of one shard visited per request (1–1000)", wholeNumber(1, 1000), 200)
    .action(async (options: { url?: string; key?: string; limit: number }, command: Command) => {
      const client = await adminClient(options, (message) => command.error(message));
      const started = Date.now();
      let bar: ReturnType<typeof progressBar> | null = null;
      try {
        let step: RebalanceView;
        // As migrate's: the rate counts this run's steps after its first (a resumed pass's earlier ones are not this run's).
        let first: { scanned: number; at: number } | null = null;
        do {
          ({ data: step } = await client.post<RebalanceView>("/v1/admin/shards/rebalance", { limit: options.limit }));
          first ??= { scanned: step.scanned, at: Date.now() };
          bar ??= progressBar(step.total, "customers", undefined, Math.min(step.scanned, step.total));
          bar.update(Math.min(step.scanned, step.total), {
            rate: migrationRate(step.scanned - first.scanned, Date.now() - first.at),
            note: `${step.moved} moved`,
          });
        } while (!step.done);
        bar?.stop();
        for (const line of rebalanceSummary(step, formatDuration(Date.now() - started))) console.log(line);
      } catch (error) {
        bar?.stop();
        reportRefusal(error);
      }
    });
}
