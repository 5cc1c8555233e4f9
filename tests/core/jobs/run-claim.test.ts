// The staleness rule of a nightly run's claim: what the Workflow says of the run's instance, and the
// claim's age.
import { describe, expect, it } from "vitest";
import { claimCeilingMs, claimGraceMs, claimVerdict } from "../../../worker/core/jobs/run-claim.ts";

const now = new Date("2026-12-01T03:15:00.000Z");
const startedAgo = (ms: number) => new Date(now.getTime() - ms).toISOString();
const minute = 60_000;

describe("a running run's claim", () => {
  it("holds while its Workflow instance is queued, running, paused or waiting", () => {
    for (const status of ["queued", "running", "paused", "waiting", "waitingForPause", "unknown", "unreadable"])
      expect(claimVerdict(status, startedAgo(3 * 3_600_000), now), status).toEqual({ holds: true });
  });

  it("is released when the instance errored or was terminated, marked as the Workflow says", () => {
    expect(claimVerdict("errored", startedAgo(minute), now)).toEqual({
      holds: false,
      status: "errored",
      terminate: false,
    });
    expect(claimVerdict("terminated", startedAgo(0), now)).toEqual({
      holds: false,
      status: "terminated",
      terminate: false,
    });
  });

  it("holds for the grace period while its instance is not found yet, then is released", () => {
    expect(claimVerdict("not_found", startedAgo(claimGraceMs), now)).toEqual({ holds: true });
    expect(claimVerdict("not_found", startedAgo(claimGraceMs + 1), now)).toEqual({
      holds: false,
      status: "errored",
      terminate: false,
    });
  });

  it("is released past the ceiling whatever the Workflow says, its instance terminated first", () => {
    expect(claimVerdict("running", startedAgo(claimCeilingMs), now)).toEqual({ holds: true });
    for (const status of ["running", "paused", "unreadable"])
      expect(claimVerdict(status, startedAgo(claimCeilingMs + 1), now), status).toEqual({
        holds: false,
        status: "terminated",
        terminate: true,
      });
    // An unreadable start time counts as past every bound.
    expect(claimVerdict("running", "not a time", now)).toMatchObject({ holds: false, terminate: true });
    expect(claimVerdict("not_found", "not a time", now)).toMatchObject({ holds: false });
  });
});
