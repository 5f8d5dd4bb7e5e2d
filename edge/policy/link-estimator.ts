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
 * worse. When the RTT estimate is older than `probeIdleMs` (the link was
 * idle, or only large payloads crossed it) a ServerLive probe refreshes it.
 */
import { highPercentile, WindowStats, type Clock, type WindowSummary } from './window-stats.js';

export interface LinkEstimatorOptions {
  /** Payloads at least this big measure bandwidth; smaller ones measure RTT. */
  minBandwidthPayloadBytes: number;
  windowSize: number;
  /** Link samples older than this are forgotten: a link changes, and an old regime must not linger. */
  maxAgeMs: number;
  probeIdleMs: number;
  clock?: Clock;
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
  /** Bandwidth samples: their upload time (link time − RTT then) and bytes, added together. */
  private readonly uploadMs: WindowStats;
  private readonly uploadBytes: WindowStats;
  /** Each bandwidth sample's own ms per byte: its spread gives the high estimate. */
  private readonly uploadMsPerByte: WindowStats;
  private probing: Promise<void> | undefined;

  constructor(private readonly options: LinkEstimatorOptions) {
    const window = { maxSamples: options.windowSize, maxAgeMs: options.maxAgeMs, clock: options.clock };
    this.rtt = new WindowStats(window);
    this.uploadMs = new WindowStats(window);
    this.uploadBytes = new WindowStats(window);
    this.uploadMsPerByte = new WindowStats(window);
  }

  /** One answered offload: `linkMs` is its round trip minus the server's queue and compute time. */
  recordRoundTrip(payloadBytes: number, linkMs: number): void {
    if (payloadBytes >= this.options.minBandwidthPayloadBytes) {
      const uploadMs = Math.max(MIN_UPLOAD_MS, linkMs - (this.rtt.mean() ?? 0));
      this.uploadMs.add(uploadMs);
      this.uploadBytes.add(payloadBytes);
      this.uploadMsPerByte.add(uploadMs / payloadBytes);
      return;
    }
    // A small payload still spends bytes × cost on a slow uplink; that part is not RTT.
    this.rtt.add(Math.max(0, linkMs - payloadBytes * (this.msPerByte() ?? 0)));
  }

  /** Total upload time over total bytes in the window. */
  private msPerByte(): number | undefined {
    const ms = this.uploadMs.mean();
    const bytes = this.uploadBytes.mean();
    return ms === undefined || bytes === undefined ? undefined : ms / bytes;
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
