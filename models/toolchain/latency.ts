/**
 * FP32 vs INT8 latency of two variants of one model, measured in the same
 * process and interleaved round by round (the order flips each round), so a
 * busy machine slows both alike instead of favouring whichever ran second.
 * Times are onnxruntime's own (`computeUs`: inside session.run on the
 * session's worker), the figure the edge's estimators learn from.
 */
import type { OrtSession } from '../../shared/ort/session.js';
import type { Tensor } from '../../shared/tensor.js';

export interface LatencyOptions {
  rounds?: number;
  runsPerRound?: number;
}

export interface LatencyComparison {
  batch: number;
  /** Median over rounds of the mean time per run. */
  baselineUs: number;
  candidateUs: number;
  /** baseline / candidate: above 1 the candidate is faster. */
  speedup: number;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;
const round1 = (x: number) => Math.round(x * 10) / 10;

export async function compareLatency(
  baseline: OrtSession,
  candidate: OrtSession,
  batch: number,
  feeds: Record<string, Tensor>,
  { rounds = 15, runsPerRound = 20 }: LatencyOptions = {},
): Promise<LatencyComparison> {
  const perRound: [number[], number[]] = [[], []];
  const sessions = [baseline, candidate];
  // Warm-up: first runs allocate and pre-pack.
  for (const session of sessions) for (let i = 0; i < 3; i++) await session.run(feeds);
  for (let r = 0; r < rounds; r++) {
    for (const which of r % 2 === 0 ? [0, 1] : [1, 0]) {
      let us = 0;
      for (let i = 0; i < runsPerRound; i++) us += (await sessions[which]!.run(feeds)).computeUs;
      perRound[which]!.push(us / runsPerRound);
    }
  }
  const [baselineUs, candidateUs] = perRound.map(median) as [number, number];
  return { batch, baselineUs: round1(baselineUs), candidateUs: round1(candidateUs), speedup: Math.round((baselineUs / candidateUs) * 100) / 100 };
}
