// Whether a customer's freshly computed score differs, for anyone reading it, from the one stored by
// an earlier nightly run. The nightly job rewrites a score row (and its lapsed categories) only when it
// does, so a night in which nothing happened to a customer usually writes nothing for them.
//
// Labels are compared exactly: stage, value tier, discount sensitivity, offer guidance and the lapsed
// categories are what the customer lists and saved audiences filter on, and a stage change is a
// recorded transition. Figures move a little every day even without a new order (P(alive), CLV and the
// overdue ratio depend on the time since the last purchase, an overdue customer's expected next order
// is counted from today, and the models are refitted nightly), so each is compared within a tolerance
// of the stored value, near the precision it is shown at:
// - P(alive) within one percentage point (the console shows whole percents);
// - money (CLV 12 and 24 months, CLV at stake) within 2%, or half a currency unit for small amounts;
//   CLV at stake (a year of orders × (1 − P(alive))) also within what one point of P(alive) moves it:
//   1% of that year of orders, or a small amount at stake would be rewritten every night as P(alive)
//   drifts well inside its own tolerance;
// - the overdue ratio within 10%, or 0.1 (the console shows one decimal);
// - the expected next order within a quarter of the time from today to it, or two days: a date weeks
//   ahead is a forecast from the customer's rhythm, not a promise to the day, and an overdue
//   customer's is counted from today, so it moves a day every day.
// Comparing with the stored value (not rounding both) means a figure drifting slowly is rewritten once
// each time it has moved by its tolerance, never every night because it sits on a rounding boundary.
// A stored row therefore reads as today's figures within those tolerances, and a list sorted by a
// figure is in today's order up to the same tolerance.

/** The score columns a reader sees, as stored in customer_scores and customer_category_lapses. */
export interface ScoreFigures {
  stage: string;
  valueTier: string;
  discountSensitivity: string | null;
  offerGuidance: string | null;
  clv12: number;
  clv24: number;
  clvAtStake: number;
  probabilityAlive: number;
  overdueRatio: number;
  /** ISO 8601; '' in rows stored before the column existed. */
  expectedNextOrderAt: string;
  /** Distinct days with a purchase (1: a one-time buyer); 0 in rows stored before the column existed. */
  purchaseDays: number;
  /** The categories the customer is listed as lapsed in. */
  lapsedCategories: readonly string[];
}

/** How far each figure may move before its row is rewritten: the larger of `floor` and `share` of it. */
export const scoreTolerances = {
  money: { floor: 0.5, share: 0.02 },
  probabilityAlive: { floor: 0.01, share: 0 },
  overdueRatio: { floor: 0.1, share: 0.1 },
  /** In days; `share` of the days from today to the fresh date. */
  expectedNextOrder: { floor: 2, share: 0.25 },
} as const;

const dayMs = 86_400_000;

const within = (stored: number, fresh: number, { floor, share }: { floor: number; share: number }) =>
  Math.abs(fresh - stored) <= Math.max(floor, share * Math.abs(stored));

function sameNextOrder(stored: string, fresh: string, now: Date): boolean {
  const storedMs = Date.parse(stored);
  const freshMs = Date.parse(fresh);
  if (Number.isNaN(storedMs) || Number.isNaN(freshMs)) return stored === fresh;
  const { floor, share } = scoreTolerances.expectedNextOrder;
  const ahead = Math.max(0, freshMs - now.getTime()) / dayMs;
  return Math.abs(freshMs - storedMs) / dayMs <= Math.max(floor, share * ahead);
}

/** CLV at stake within the money tolerance, or within one P(alive) tolerance of the year at stake. */
function sameAtStake(stored: number, fresh: ScoreFigures): boolean {
  if (within(stored, fresh.clvAtStake, scoreTolerances.money)) return true;
  const gone = 1 - fresh.probabilityAlive;
  if (!(gone > 0)) return false;
  const year = fresh.clvAtStake / gone;
  return Math.abs(fresh.clvAtStake - stored) <= scoreTolerances.probabilityAlive.floor * year;
}

function sameCategories(a: readonly string[], b: readonly string[]) {
  if (a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((category) => set.has(category));
}

/** True when the fresh score must be written: no stored score, or one a reader would see differ. */
export function scoreChanged(stored: ScoreFigures | null, fresh: ScoreFigures, now: Date): boolean {
  if (!stored) return true;
  const { money } = scoreTolerances;
  return !(
    stored.stage === fresh.stage &&
    stored.valueTier === fresh.valueTier &&
    stored.purchaseDays === fresh.purchaseDays &&
    (stored.discountSensitivity ?? null) === (fresh.discountSensitivity ?? null) &&
    (stored.offerGuidance ?? null) === (fresh.offerGuidance ?? null) &&
    sameCategories(stored.lapsedCategories, fresh.lapsedCategories) &&
    within(stored.probabilityAlive, fresh.probabilityAlive, scoreTolerances.probabilityAlive) &&
    within(stored.overdueRatio, fresh.overdueRatio, scoreTolerances.overdueRatio) &&
    sameNextOrder(stored.expectedNextOrderAt, fresh.expectedNextOrderAt, now) &&
    within(stored.clv12, fresh.clv12, money) &&
    within(stored.clv24, fresh.clv24, money) &&
    sameAtStake(stored.clvAtStake, fresh)
  );
}
