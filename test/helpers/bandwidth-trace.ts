/**
 * Bandwidth traces: link capacity over time, replayed by the link emulator.
 * A trace file holds one sample per line, `<seconds since start>\t<Mbit/s>`
 * (the format of test/fixtures/traces, see its README). A sample's rate holds
 * until the next sample (step-wise); the first rate also covers the time before
 * the first sample. Real traces loop when a run is longer than the trace;
 * synthetic ones may instead hold their last rate forever.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../shared/paths.js';
import { percentileOfSorted } from '../../shared/percentile.js';

export interface TraceSample {
  timeS: number;
  mbps: number;
}

export interface BandwidthTrace {
  name: string;
  samples: readonly TraceSample[];
  /** The period of a looping trace: the last sample holds for one mean sample interval. */
  durationS: number;
  /** false: the last rate holds forever (synthetic traces such as a step change). */
  loop: boolean;
}

export interface TraceStats {
  samples: number;
  durationS: number;
  meanMbps: number;
  medianMbps: number;
  p10Mbps: number;
  p90Mbps: number;
}

/** The real traces the repository carries (norway-3g, oboe; sources in its README). */
export const realTracesDir = path.join(packageRoot, 'test', 'fixtures', 'traces');

/** A trace from samples; checks order and values, computes the loop period. */
export function traceFromSamples(name: string, samples: readonly TraceSample[], loop: boolean): BandwidthTrace {
  if (samples.length === 0) throw new Error(`bandwidth trace '${name}': no samples — expected lines of '<seconds>\\t<Mbit/s>'`);
  samples.forEach((sample, i) => {
    if (!Number.isFinite(sample.timeS) || !Number.isFinite(sample.mbps) || sample.mbps < 0 || sample.timeS < 0) {
      throw new Error(`bandwidth trace '${name}': sample ${i + 1} (${sample.timeS} s, ${sample.mbps} Mbit/s) must have a time and a rate that are finite and >= 0`);
    }
    if (i > 0 && sample.timeS < samples[i - 1]!.timeS) {
      throw new Error(`bandwidth trace '${name}': sample ${i + 1} at ${sample.timeS} s comes before the previous one — times must not decrease`);
    }
  });
  if (loop && samples.every((sample) => sample.mbps === 0)) throw new Error(`bandwidth trace '${name}': every rate is 0, so nothing could ever be sent`);
  const first = samples[0]!.timeS;
  const last = samples[samples.length - 1]!.timeS;
  const meanIntervalS = samples.length > 1 ? (last - first) / (samples.length - 1) : 1;
  return { name, samples, durationS: last + (meanIntervalS || 1), loop };
}

export function parseBandwidthTrace(text: string, name: string): BandwidthTrace {
  const samples: TraceSample[] = [];
  text.split('\n').forEach((line, i) => {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const fields = trimmed.split(/\s+/);
    const timeS = Number(fields[0]);
    const mbps = Number(fields[1]);
    if (fields.length !== 2 || Number.isNaN(timeS) || Number.isNaN(mbps)) {
      throw new Error(`bandwidth trace '${name}' line ${i + 1}: expected '<seconds>\\t<Mbit/s>', got '${trimmed.slice(0, 60)}'`);
    }
    samples.push({ timeS, mbps });
  });
  return traceFromSamples(name, samples, true);
}

export function loadBandwidthTrace(file: string): BandwidthTrace {
  return parseBandwidthTrace(readFileSync(file, 'utf8'), path.basename(file));
}

/** The trace files of `dir` (full paths, natural order); README and hidden files are left out. */
export function listBandwidthTraces(dir: string): string[] {
  return readdirSync(dir)
    .filter((entry) => !entry.startsWith('.') && !/\.md$/i.test(entry) && statSync(path.join(dir, entry)).isFile())
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
    .map((entry) => path.join(dir, entry));
}

export function loadBandwidthTraces(dir: string): BandwidthTrace[] {
  return listBandwidthTraces(dir).map(loadBandwidthTrace);
}

/** A fixed rate forever. */
export function constantTrace(mbps: number): BandwidthTrace {
  return traceFromSamples(`constant-${mbps}Mbps`, [{ timeS: 0, mbps }], false);
}

/** `beforeMbps` until `atS`, then `afterMbps` forever (e.g. 20 → 0.5 Mbit/s at 10 s). */
export function stepTrace(beforeMbps: number, afterMbps: number, atS: number): BandwidthTrace {
  return traceFromSamples(`step-${beforeMbps}-to-${afterMbps}Mbps-at-${atS}s`, [{ timeS: 0, mbps: beforeMbps }, { timeS: atS, mbps: afterMbps }], false);
}

interface Segment {
  mbps: number;
  /** When this rate stops applying (Infinity for the last rate of a non-looping trace). */
  untilS: number;
}

/** The step holding at time `tS` (seconds since the replay started). */
function segmentAt(trace: BandwidthTrace, tS: number): Segment {
  const { samples } = trace;
  const t = Math.max(0, tS);
  const periodStartS = trace.loop ? Math.floor(t / trace.durationS) * trace.durationS : 0;
  const inPeriodS = t - periodStartS;
  let low = 0;
  let high = samples.length - 1;
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if (samples[mid]!.timeS <= inPeriodS) low = mid;
    else high = mid - 1;
  }
  // `low` is the last sample at or before `inPeriodS` (of several at one time, the last holds).
  const i = low;
  const next = samples[i + 1];
  const endInPeriodS = next ? next.timeS : trace.loop ? trace.durationS : Infinity;
  return { mbps: samples[i]!.mbps, untilS: periodStartS + endInPeriodS };
}

export function rateAt(trace: BandwidthTrace, tS: number): number {
  return segmentAt(trace, tS).mbps;
}

/** Bits the link can carry between `startS` and `endS`. */
export function bitsBetween(trace: BandwidthTrace, startS: number, endS: number): number {
  let bits = 0;
  for (let t = Math.max(0, startS); t < endS; ) {
    const segment = segmentAt(trace, t);
    const until = Math.min(segment.untilS, endS);
    bits += segment.mbps * 1e6 * (until - t);
    t = until;
  }
  return bits;
}

/** When `bits` sent from `startS` have all been serialized (Infinity if the rate stays 0 forever). */
export function transferEndS(trace: BandwidthTrace, startS: number, bits: number): number {
  let t = Math.max(0, startS);
  let remaining = bits;
  while (remaining > 0) {
    const segment = segmentAt(trace, t);
    const bitsPerS = segment.mbps * 1e6;
    if (bitsPerS === 0) {
      if (segment.untilS === Infinity) return Infinity;
    } else if (bitsPerS * (segment.untilS - t) >= remaining) {
      return t + remaining / bitsPerS;
    } else {
      remaining -= bitsPerS * (segment.untilS - t);
    }
    // Guards against a segment too short to move `t` in floating point.
    t = Math.max(segment.untilS, t + 1e-9);
  }
  return t;
}

/** Summary of one trace or of a set pooled together (per sample, as test/fixtures/traces/README.md reports them). */
export function traceStats(traces: BandwidthTrace | readonly BandwidthTrace[]): TraceStats {
  const list: readonly BandwidthTrace[] = 'samples' in traces ? [traces] : traces;
  const rates = list.flatMap((trace) => trace.samples.map((sample) => sample.mbps)).sort((a, b) => a - b);
  if (rates.length === 0) throw new Error('traceStats: no traces given');
  return {
    samples: rates.length,
    durationS: list.reduce((sum, trace) => sum + trace.durationS, 0),
    meanMbps: rates.reduce((sum, rate) => sum + rate, 0) / rates.length,
    medianMbps: percentileOfSorted(rates, 0.5),
    p10Mbps: percentileOfSorted(rates, 0.1),
    p90Mbps: percentileOfSorted(rates, 0.9),
  };
}
