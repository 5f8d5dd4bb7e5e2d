/**
 * The link to the cloud tier, learned from real traffic. Each answered
 * offload gives its link time: the round trip minus the server's own
 * queue_us + compute_us. Small payloads measure the round-trip time (RTT);
 * payloads of at least `minBandwidthPayloadBytes` measure the uplink as
 * bytes over (link time − RTT), pooled over the window as total time over
 * total bytes, so that big transfers (whose time is mostly upload) outweigh
 * small ones (whose excess over the RTT is mostly jitter), and a slow
 * transfer weighs by the time it took: one at 0.5 Mbit/s among seven at
 * 20 Mbit/s moves the estimate a lot, as it should when the link just got
 * worse. Samples also weigh by recency (halving every `uplinkHalfLifeMs`),
 * so after a step change the new rate dominates within a few transfers
 * instead of waiting for the old ones to leave the window. When the RTT
 * estimate is older than `probeIdleMs` (the link was idle, or only large
 * payloads crossed it) a ServerLive probe refreshes it.
 *
 * The uplink is also a queue: payloads on their way out delay the next one.
 * `reserveUpload` books each offload's bytes on a virtual FIFO that drains
 * at the estimated rate, and `uploadWaitMs` is how long a payload sent now
 * waits behind them, as the local estimator counts the items ahead on the
 * device.
 */
import { highPercentile, monotonicClock, WindowStats, type Clock, type WindowSummary } from './window-stats.js';

export interface LinkEstimatorOptions {
  /** Payloads at least this big measure bandwidth; smaller ones measure RTT. */
  minBandwidthPayloadBytes: number;
  windowSize: number;
  /** Link samples older than this are forgotten: a link changes, and an old regime must not linger. */
  maxAgeMs: number;
  probeIdleMs: number;
  /** A bandwidth sample's weight halves every this many ms. */
  uplinkHalfLifeMs: number;
  clock?: Clock;
}

interface TransferSample {
  at: number;
  uploadMs: number;
  bytes: number;
}

export interface LinkSnapshot {
  rttMs?: number;
  rttHighMs?: number;
  rttAgeMs: number;
  uplinkMbps?: number;
  uplinkAgeMs: number;
}

/** Below this an upload is not measurable on this clock (loopback); the floor keeps the bandwidth finite. */
const MIN_UPLOAD_MS = 1;

export const mbpsFromMsPerByte = (msPerByte: number) => 0.008 / msPerByte;

export class LinkEstimator {
  private readonly rtt: WindowStats;
  /** Bandwidth samples: their upload time (link time − RTT then) and bytes, pooled with recency weights. */
  private readonly transfers: TransferSample[] = [];
  /** Each bandwidth sample's own ms per byte: its spread gives the high estimate. */
  private readonly uploadMsPerByte: WindowStats;
  /** Bytes booked on the virtual uplink queue and not yet sent, as of `backlogAt`. */
  private backlogBytes = 0;
  private backlogAt = 0;
  /** Bytes ever booked; an answered payload was delivered with everything booked before it (the link is FIFO). */
  private bookedBytes = 0;
  private probing: Promise<void> | undefined;
  private readonly clock: Clock;

  constructor(private readonly options: LinkEstimatorOptions) {
    const window = { maxSamples: options.windowSize, maxAgeMs: options.maxAgeMs, clock: options.clock };
    this.clock = options.clock ?? monotonicClock;
    this.rtt = new WindowStats(window);
    this.uploadMsPerByte = new WindowStats(window);
  }

  /** One answered offload: `linkMs` is its round trip minus the server's queue and compute time. */
  recordRoundTrip(payloadBytes: number, linkMs: number): void {
    if (payloadBytes >= this.options.minBandwidthPayloadBytes) {
      const uploadMs = Math.max(MIN_UPLOAD_MS, linkMs - (this.rtt.mean() ?? 0));
      if (!Number.isFinite(uploadMs)) return;
      this.transfers.push({ at: this.clock(), uploadMs, bytes: payloadBytes });
      if (this.transfers.length > this.options.windowSize) this.transfers.shift();
      this.uploadMsPerByte.add(uploadMs / payloadBytes);
      return;
    }
    // A small payload still spends bytes × cost on a slow uplink; that part is not RTT.
    this.rtt.add(Math.max(0, linkMs - payloadBytes * (this.msPerByte() ?? 0)));
  }

  /** Total upload time over total bytes in the window, each transfer weighted by its recency. */
  private msPerByte(): number | undefined {
    const now = this.clock();
    while (this.transfers.length > 0 && this.transfers[0]!.at < now - this.options.maxAgeMs) this.transfers.shift();
    if (this.transfers.length === 0) return undefined;
    let ms = 0;
    let bytes = 0;
    for (const sample of this.transfers) {
      const weight = 0.5 ** ((now - sample.at) / this.options.uplinkHalfLifeMs);
      ms += weight * sample.uploadMs;
      bytes += weight * sample.bytes;
    }
    return ms / bytes;
  }

  /** Drains the virtual uplink queue at the rate estimated now; returns that rate's ms per byte. */
  private drainBacklog(): number | undefined {
    const now = this.clock();
    const cost = this.msPerByte();
    if (cost !== undefined) this.backlogBytes = Math.max(0, this.backlogBytes - (now - this.backlogAt) / cost);
    this.backlogAt = now;
    return cost;
  }

  /**
   * Books an offload's payload on the virtual uplink queue (small ones are
   * inside the RTT); returns its place in the queue, for `uploadDelivered`.
   */
  reserveUpload(bytes: number): number {
    if (this.drainBacklog() !== undefined && bytes >= this.options.minBandwidthPayloadBytes) {
      this.backlogBytes += bytes;
      this.bookedBytes += bytes;
    }
    return this.bookedBytes;
  }

  /** The payload booked at `place` has arrived (or no longer matters): nothing booked before it is still waiting. */
  uploadDelivered(place: number): void {
    this.drainBacklog();
    this.backlogBytes = Math.min(this.backlogBytes, this.bookedBytes - place);
  }

  /** How long a payload sent now waits behind the ones booked before it. */
  uploadWaitMs(): number {
    const cost = this.drainBacklog();
    return cost === undefined ? 0 : this.backlogBytes * cost;
  }

  /** A probe's round trip (no payload, no server work). */
  recordProbe(rttMs: number): void {
    this.rtt.add(rttMs);
  }

  rttEstimate(): WindowSummary | undefined {
    return this.rtt.summary();
  }

  /** Time to send `bytes` up; undefined for a large payload before any large transfer was measured. */
  uploadEstimate(bytes: number): { meanMs: number; highMs: number } | undefined {
    const cost = this.msPerByte();
    if (cost !== undefined) return { meanMs: bytes * cost, highMs: bytes * Math.max(cost, this.uploadMsPerByte.percentile(highPercentile)!) };
    // Small payloads' transfer time is inside the RTT samples they produced.
    return bytes < this.options.minBandwidthPayloadBytes ? { meanMs: 0, highMs: 0 } : undefined;
  }

  /**
   * Starts a probe when the RTT estimate is stale and none is running; the
   * caller does not wait for it (this decision uses what is known, the next
   * ones the fresh sample). Returns the probe, for tests and start-up.
   */
  refreshIfStale(probeRoundTripMs: () => Promise<number>): Promise<void> | undefined {
    if (this.probing || this.rtt.ageMs() < this.options.probeIdleMs) return undefined;
    this.probing = probeRoundTripMs()
      .then((ms) => this.recordProbe(ms))
      // A failed probe teaches nothing about latency; the circuit breaker deals with reachability.
      .catch(() => undefined)
      .finally(() => {
        this.probing = undefined;
      });
    return this.probing;
  }

  snapshot(): LinkSnapshot {
    const rtt = this.rtt.summary();
    const cost = this.msPerByte();
    return {
      rttMs: rtt?.mean,
      rttHighMs: rtt?.high,
      rttAgeMs: this.rtt.ageMs(),
      uplinkMbps: cost === undefined ? undefined : mbpsFromMsPerByte(cost),
      uplinkAgeMs: this.uploadMsPerByte.ageMs(),
    };
  }
}
