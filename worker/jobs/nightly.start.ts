// Starting the nightly job, one run at a time, from the admin route and the cron trigger alike: the
// run's job_runs row is claimed first (nightly.repo.ts claimRun: one statement, so two starts at once
// cannot both win), then its Workflow instance is created. A claim whose run stopped without finishing
// is released and the start tried again (the staleness rule: core/jobs/run-claim.ts). On D1, no run
// starts while customer writes are paused for a migration's last pass (worker/shards/write-pause.ts):
// its scores would land behind the copy.
import { claimVerdict, type InstanceStatus } from "../core/jobs/run-claim.ts";
import type { Db, Env } from "../env.ts";
import { pausedOnD1 } from "../shards/write-pause.ts";
import { claimRun, dropClaim, releaseRun } from "./nightly.repo.ts";

export interface StartRequest {
  runId: string;
  /** The instant the run fits and scores as of. */
  asOf: Date;
  now: Date;
  pageSize?: number;
  audiencePageSize?: number;
}

export type StartOutcome =
  | { started: true; runId: string }
  /** Another run is running: `runId` (started `startedAt`). */
  | { started: false; reason: "running"; runId: string; startedAt: string }
  /** `asOf` is before the asOf of the latest finished run. */
  | { started: false; reason: "before_last_run"; lastAsOf: string }
  /** A run with this id exists already (the cron trigger delivered the same schedule twice). */
  | { started: false; reason: "exists"; runId: string }
  /** Customer writes on D1 are paused (since `pausedAt`) for a migration's last pass. */
  | { started: false; reason: "writes_paused"; pausedAt: string };

/** What the Workflow says of a run's instance: its status and error, or `not_found` / `unreadable`. */
export async function workflowState(
  env: Env,
  runId: string,
): Promise<{ status: InstanceStatus; error: string | null }> {
  try {
    const instance = await env.NIGHTLY.get(runId);
    const state = await instance.status();
    return { status: state.status === "complete" ? "done" : state.status, error: state.error?.message ?? null };
  } catch (error) {
    return { status: String(error).includes("not_found") ? "not_found" : "unreadable", error: null };
  }
}

/**
 * Terminates a run's Workflow instance; false when that failed and the instance may still be running
 * (its claim then holds, so two runs never overlap).
 */
async function terminate(env: Env, runId: string): Promise<boolean> {
  try {
    await (await env.NIGHTLY.get(runId)).terminate();
    return true;
  } catch {
    return (await workflowState(env, runId)).status === "not_found";
  }
}

/**
 * An asOf this close to now is the present, never back-dated: after a run dated ahead of its time, the
 * cron's next run (dated its scheduled time) and a run without asOf still start.
 */
const presentMs = 60 * 60 * 1000;

export async function startNightlyRun(env: Env, db: Db, request: StartRequest): Promise<StartOutcome> {
  const { runId, now } = request;
  const asOf = request.asOf.toISOString();
  const backDated = request.asOf.getTime() < now.getTime() - presentMs;
  const pausedAt = await pausedOnD1(env, db);
  if (pausedAt !== null) return { started: false, reason: "writes_paused", pausedAt };
  // After a stale claim is released the claim is tried again; at the third try, whoever holds it won.
  for (let attempt = 1; ; attempt++) {
    const claim = await claimRun(db, runId, asOf, now, backDated);
    if (claim.claimed) break;
    if (backDated && claim.lastAsOf !== null && claim.lastAsOf > asOf)
      return { started: false, reason: "before_last_run", lastAsOf: claim.lastAsOf };
    if (!claim.running) return { started: false, reason: "exists", runId };
    const holder = {
      started: false,
      reason: "running",
      runId: claim.running.id,
      startedAt: claim.running.startedAt,
    } as const;
    if (holder.runId === runId || attempt >= 3) return holder;
    const verdict = claimVerdict((await workflowState(env, holder.runId)).status, holder.startedAt, now);
    if (verdict.holds) return holder;
    if (verdict.terminate && !(await terminate(env, holder.runId))) return holder;
    await releaseRun(db, holder.runId, verdict.status, now);
    console.log(JSON.stringify({ job: "nightly", released: holder.runId, status: verdict.status }));
  }
  try {
    await env.NIGHTLY.create({
      id: runId,
      params: { asOf, pageSize: request.pageSize, audiencePageSize: request.audiencePageSize },
    });
  } catch (error) {
    await dropClaim(db, runId);
    throw error;
  }
  return { started: true, runId };
}
