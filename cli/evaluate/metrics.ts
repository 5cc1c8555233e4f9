// Top-k ranking metrics for a time-split evaluation: hit rate, recall and NDCG with binary relevance
// (did the household buy the category after the cutoff). Pure arithmetic; it loads nothing.

export interface RankingMetrics {
  hitRate: number;
  recall: number;
  ndcg: number;
}

/** Metrics of one ranked list against the set of relevant ids, cut at k. */
export function scoreRanking(ranked: readonly string[], relevant: ReadonlySet<string>, k: number): RankingMetrics {
  if (relevant.size === 0) throw new Error("scoreRanking: relevant set is empty");
  const top = ranked.slice(0, k);
  let hits = 0;
  let dcg = 0;
  top.forEach((id, index) => {
    if (relevant.has(id)) {
      hits++;
      dcg += 1 / Math.log2(index + 2);
    }
  });
  let ideal = 0;
  for (let index = 0; index < Math.min(k, relevant.size); index++) ideal += 1 / Math.log2(index + 2);
  return { hitRate: hits > 0 ? 1 : 0, recall: hits / relevant.size, ndcg: dcg / ideal };
}

/** Running mean of metrics over households. */
export function createMetricsAverage() {
  let count = 0;
  const sum: RankingMetrics = { hitRate: 0, recall: 0, ndcg: 0 };
  return {
    add(metrics: RankingMetrics) {
      count++;
      sum.hitRate += metrics.hitRate;
      sum.recall += metrics.recall;
      sum.ndcg += metrics.ndcg;
    },
    mean(): RankingMetrics {
      const round = (value: number) => Math.round((value / Math.max(1, count)) * 10_000) / 10_000;
      return { hitRate: round(sum.hitRate), recall: round(sum.recall), ndcg: round(sum.ndcg) };
    },
  };
}
