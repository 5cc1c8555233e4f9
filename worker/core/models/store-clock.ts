// The instant a customer's figures are read as of. A nightly run scores everyone as of its `asOf`; the
// customer page computes the same figures again on request. For a run at the present that is now. For a
// back-dated run (an import of past orders scored as of its last day) "now" would be years after the
// last order, and the page would call lapsed, with a CLV of 0, the customers the list ranks on top: the
// page reads the store's clock instead, the run's `asOf` plus the time since its fit came into force.

/** A fit put in force more than this after the instant it was fitted as of came from a back-dated run. */
const backDatedAfterMs = 86_400_000;

/**
 * `now` on the store's clock: `fittedAt` plus the time elapsed since `inForceAt` when the fit in force
 * is back-dated (put in force more than a day after its `fittedAt`); `now` otherwise (no fit, a run at
 * the present, or one dated ahead of it).
 */
export function storeClock(now: Date, fit: { fittedAt: string; inForceAt: string | null } | null): Date {
  if (!fit?.inForceAt) return now;
  const fitted = Date.parse(fit.fittedAt);
  const inForce = Date.parse(fit.inForceAt);
  if (!(inForce - fitted > backDatedAfterMs)) return now;
  return new Date(fitted + Math.max(0, now.getTime() - inForce));
}

/**
 * The instant one customer is read as of: the store's clock, but `now` for a customer with an order
 * after it (still buying today, after a back-dated run): read on the store's clock, their newest
 * orders would lie in its future, and the customer would be left unscored or scored as of a past that
 * never held their latest orders.
 */
export function customerClock(
  now: Date,
  fit: { fittedAt: string; inForceAt: string | null } | null,
  lastOrderAt: string | null,
): Date {
  const clock = storeClock(now, fit);
  return lastOrderAt !== null && Date.parse(lastOrderAt) > clock.getTime() ? now : clock;
}
