/**
 * Session latency of several variants of one model, measured in the same
 * process and interleaved round by round (the order reverses each round), so
 * a busy machine slows all alike instead of favouring whichever ran last.
 * Times are onnxruntime's own (`computeUs`: inside session.run on the
 * session's worker), the figure the edge's estimators learn from. Every
 * timing of FP32 against its variants in the project goes through here.
 */
import type { OrtSession } from '../../shared/ort/session.js';
import { percentile } from '../../shared/percentile.js';
import type { Tensor } from '../../shared/tensor.js';

export interface LatencyOptions {
  rounds?: number;
  runsPerRound?: number;
  /** Untimed runs of each session first: the first runs allocate and pre-pack weights. */
  warmupRuns?: number;
}

export interface LatencyComparison {
  batch: number;
  /** Median over rounds of the mean time per run. */
  baselineUs: number;
  candidateUs: number;
  /** baseline / candidate: above 1 the candidate is faster. */
  speedup: number;
}

const round1 = (x: number) => Math.round(x * 10) / 10;

/** Median (over rounds) time per run of each session on the same feeds, in µs, in the order given. */
export async function timeInterleaved(
  sessions: readonly OrtSession[],
  feeds: Record<string, Tensor>,
  { rounds = 15, runsPerRound = 20, warmupRuns = 3 }: LatencyOptions = {},
): Promise<number[]> {
  if (rounds < 1 || runsPerRound < 1) throw new Error(`latency: rounds (${rounds}) and runs per round (${runsPerRound}) must be at least 1`);
  const perRound = sessions.map(() => [] as number[]);
  for (const session of sessions) for (let i = 0; i < warmupRuns; i++) await session.run(feeds);
  const forward = sessions.map((_, i) => i);
  const backward = [...forward].reverse();
  for (let r = 0; r < rounds; r++) {
    for (const which of r % 2 === 0 ? forward : backward) {
      let us = 0;
      for (let i = 0; i < runsPerRound; i++) us += (await sessions[which]!.run(feeds)).computeUs;
      perRound[which]!.push(us / runsPerRound);
    }
  }
  return perRound.map((times) => round1(percentile(times, 0.5)));
}

export async function compareLatency(
  baseline: OrtSession,
  candidate: OrtSession,
  batch: number,
  feeds: Record<string, Tensor>,
  options: LatencyOptions = {},
): Promise<LatencyComparison> {
  const [baselineUs, candidateUs] = (await timeInterleaved([baseline, candidate], feeds, options)) as [number, number];
  return { batch, baselineUs, candidateUs, speedup: Math.round((baselineUs / candidateUs) * 100) / 100 };
}
