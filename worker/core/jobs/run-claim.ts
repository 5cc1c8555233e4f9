// One nightly run at a time: a started run holds a claim (its job_runs row marked running) until it
// finishes. Whether a claim still holds when another start finds it, from what the Workflow says of the
// run's instance and the claim's age: a run whose instance errored, was terminated or is gone must not
// block the job forever.

/**
 * A claim whose Workflow instance is not found may be a start between writing its row and creating the
 * instance: it holds this long, then it is stale.
 */
export const claimGraceMs = 2 * 60_000;

/**
 * Past this age a claim is stale whatever the Workflow says (a run paused, stuck, or whose status cannot
 * be read); its instance is terminated before the next run starts, so two never overlap. Scoring ten
 * million customers in one database takes about 2–3.5 hours (docs/scaling.md).
 */
export const claimCeilingMs = 12 * 3_600_000;

/** The Workflow's status of an instance, or `not_found` (no such instance) / `unreadable` (the read failed). */
export type InstanceStatus = string;

export type ClaimVerdict =
  | { holds: true }
  /** Stale: the row is marked `status` and, with `terminate`, its instance is terminated first. */
  | { holds: false; status: "errored" | "terminated"; terminate: boolean };

export function claimVerdict(instance: InstanceStatus, startedAt: string, now: Date): ClaimVerdict {
  const age = now.getTime() - Date.parse(startedAt);
  if (instance === "errored") return { holds: false, status: "errored", terminate: false };
  if (instance === "terminated") return { holds: false, status: "terminated", terminate: false };
  // Its row would say done; a claim still running beside a finished instance never finished its record.
  if (instance === "done") return { holds: false, status: "errored", terminate: false };
  if (instance === "not_found")
    return age <= claimGraceMs ? { holds: true } : { holds: false, status: "errored", terminate: false };
  if (!(age <= claimCeilingMs)) return { holds: false, status: "terminated", terminate: true };
  return { holds: true };
}
