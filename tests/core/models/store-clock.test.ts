import { describe, expect, it } from "vitest";
import { customerClock, storeClock } from "../../../worker/core/models/store-clock.ts";

const now = new Date("2026-12-07T12:00:00Z");
const hour = 3_600_000;

describe("storeClock", () => {
  it("is now with no fit, a fit at the present, or one dated ahead of it", () => {
    expect(storeClock(now, null)).toEqual(now);
    expect(storeClock(now, { fittedAt: "2026-12-07T03:15:00Z", inForceAt: "2026-12-07T06:40:00Z" })).toEqual(now);
    expect(storeClock(now, { fittedAt: "2027-12-07T03:15:00Z", inForceAt: "2026-12-07T03:20:00Z" })).toEqual(now);
    // A fit not yet in force (a run still scoring) gives no clock of its own.
    expect(storeClock(now, { fittedAt: "2018-01-02T00:00:00Z", inForceAt: null })).toEqual(now);
  });

  it("after a back-dated run, is its asOf plus the time since the fit came into force", () => {
    const fit = { fittedAt: "2018-01-02T00:00:00Z", inForceAt: new Date(now.getTime() - 3 * hour).toISOString() };
    expect(storeClock(now, fit).toISOString()).toBe("2018-01-02T03:00:00.000Z");
    // A request read beside the run's end (a replica's clock behind) never goes before the asOf.
    expect(storeClock(new Date(now.getTime() - 4 * hour), fit).toISOString()).toBe("2018-01-02T00:00:00.000Z");
  });

  it("takes a run that took less than a day for one at the present", () => {
    const fit = { fittedAt: "2026-12-06T03:15:00Z", inForceAt: "2026-12-07T03:00:00Z" };
    expect(storeClock(now, fit)).toEqual(now);
  });

  it("reads a customer with an order after the store's clock at now: they are still buying today", () => {
    const fit = { fittedAt: "2018-01-02T00:00:00Z", inForceAt: new Date(now.getTime() - 3 * hour).toISOString() };
    expect(customerClock(now, fit, "2017-12-30T18:00:00Z").toISOString()).toBe("2018-01-02T03:00:00.000Z");
    expect(customerClock(now, fit, null).toISOString()).toBe("2018-01-02T03:00:00.000Z");
    expect(customerClock(now, fit, new Date(now.getTime() - hour).toISOString())).toEqual(now);
    expect(customerClock(now, null, "2026-12-07T11:00:00Z")).toEqual(now);
  });
});
