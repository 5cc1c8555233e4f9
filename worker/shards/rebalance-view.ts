// A rebalance pass's record (worker/shards/rebalance.ts) and the view its routes answer, in a module of
// its own with no Worker types, so the CLI and the tests read the same shape.

export interface RebalanceState {
  /** The shard count the pass places regions by. */
  count: number;
  /** The shard the pass is in, and the last customer id visited there ("" at its start). */
  shard: number;
  cursor: string;
  scanned: number;
  total: number;
  moved: number;
  moves: number;
  busy: number;
  tooLarge: number;
  startedAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

/** A pass's record as the routes answer it: with the count the deployment runs with, and whether it is finished. */
export type RebalanceView = RebalanceState & { running: number; done: boolean };

export const rebalanceView = (state: RebalanceState, running: number): RebalanceView => ({
  ...state,
  running,
  done: state.finishedAt !== null,
});
