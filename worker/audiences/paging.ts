// How much of an audience's sync one nightly Workflow step takes on (worker/audiences/audiences.sync.ts),
// apart from it so the benchmarks, which run in Node, read the same figures.

/** How many pages one Workflow step takes on, unless the caller asks for other numbers. */
export interface AudiencePaging {
  /** Members marked per page: 2,000 (one keyset read of the list and one write). */
  markPageSize: number;
  /** Pages of members one step marks: 25 (50,000 members, 2 calls a page). */
  markPagesPerStep: number;
  /** Pages one step POSTs: 20 (10,000 customers at 500; 15 s a POST at most, 5 minutes, and the reads: 10 minutes a step). */
  deliveryPagesPerStep: number;
  /**
   * Delivery steps an audience may take past those its pages need (each page that needed a retry ends
   * its step): 20. Past them the rest waits for the next run, so a receiver that fails every first try
   * cannot take the run past Workflows' step limit.
   */
  retriedDeliverySteps: number;
  /** Members of a deleted audience (or one with a new receiver) deleted per statement: 20,000 (well within D1's 30 s a query). */
  purgePageSize: number;
  /** Such pages one step deletes: 25 (500,000 members, 2–3 calls a page). */
  purgePagesPerStep: number;
}

export const defaultAudiencePaging: AudiencePaging = {
  markPageSize: 2_000,
  markPagesPerStep: 25,
  deliveryPagesPerStep: 20,
  retriedDeliverySteps: 20,
  purgePageSize: 20_000,
  purgePagesPerStep: 25,
};
