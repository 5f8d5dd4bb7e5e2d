/**
 * The fast failure detector of the link to the cloud. While offloads are in
 * flight and nothing has come back for `stallSilenceMs` (and at least a
 * round trip), a ServerLive probe must return within the time a tiny message
 * needs (the uplink wait ahead of it + the RTT's high estimate) +
 * `stallProbeSlackMs` (a busy server's event loop, a throttled device's
 * timers). When it does not, the link has stalled: the breaker opens, seconds
 * before the offloads in flight would reach their deadlines (an outage
 * otherwise shows only as timeouts). A slow but moving link answers the
 * probe, whose round trip, less the uplink wait it queued behind, is the
 * link estimator's RTT sample.
 */

/** What the probe reads from, and tells, the link estimator. */
export interface LinkSignals {
  /** The round trip's high estimate (ms); undefined before the first sample. */
  rttEstimate(): { high: number } | undefined;
  /** Time a new message waits behind payloads already on their way up (ms). */
  uploadWaitMs(): number;
  recordProbe(roundTripMs: number): void;
}

/** What the probe reads from the stream. */
export interface StreamSignals {
  readonly pendingCount: number;
  oldestPendingSentAt(): number | undefined;
  readonly lastHeardAt: number;
}

export interface StallProbeOptions {
  stallSilenceMs: number;
  stallProbeSlackMs: number;
  /** A timed ServerLive round trip failing after `timeoutMs`. */
  roundTripMs(timeoutMs: number): Promise<number>;
  /** The link stalled: open the circuit. */
  stalled(reason: string): void;
  /** Whether offloading is on at all (the circuit is closed). */
  active(): boolean;
}

export class StallProbe {
  private timer: NodeJS.Timeout | undefined;
  private probing: Promise<void> | undefined;

  constructor(
    private readonly stream: StreamSignals,
    private readonly link: LinkSignals,
    private readonly options: StallProbeOptions,
  ) {}

  /** Checks every tenth of the silence threshold, so a stall is noticed within ~10% of it. */
  start(): void {
    this.timer ??= setInterval(() => void this.check(), Math.max(10, this.options.stallSilenceMs / 10));
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One check; returns the probe when one was sent. */
  check(now = performance.now()): Promise<void> | undefined {
    if (this.probing || !this.options.active()) return undefined;
    const oldestSentAt = this.stream.oldestPendingSentAt();
    if (oldestSentAt === undefined) return undefined;
    const silentMs = now - Math.max(this.stream.lastHeardAt, oldestSentAt);
    const rttHighMs = this.link.rttEstimate()?.high ?? 0;
    if (silentMs < Math.max(this.options.stallSilenceMs, rttHighMs)) return undefined;
    const uploadWaitMs = this.link.uploadWaitMs();
    const timeoutMs = Math.round(uploadWaitMs + rttHighMs + this.options.stallProbeSlackMs);
    const waiting = this.stream.pendingCount;
    this.probing = this.options
      .roundTripMs(timeoutMs)
      .then(
        (ms) => this.link.recordProbe(Math.max(0, ms - uploadWaitMs)),
        () => {
          // Offloads answered meanwhile: the link moved, the probe was just unlucky.
          if (this.stream.lastHeardAt > now) return;
          this.options.stalled(`the link stalled: ${waiting} offload(s) unanswered for ${Math.round(silentMs)} ms and no answer to a ServerLive probe within ${timeoutMs} ms`);
        },
      )
      .finally(() => {
        this.probing = undefined;
      });
    return this.probing;
  }
}
