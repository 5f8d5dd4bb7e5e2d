/**
 * The one percentile definition of the project: nearest rank, so the answer
 * is always a value that was observed (a deadline check never relies on a
 * latency no task took, and a small window's high percentile is its slow sample).
 */

/** The nearest-rank `p` percentile (0 < p ≤ 1) of `values`, in any order; NaN when there are none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  return percentileOfSorted([...values].sort((a, b) => a - b), p);
}

/** As `percentile`, for values already in ascending order (skips the copy and sort). */
export function percentileOfSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}
