/**
 * The one owner of cloud health. Closed: offload. Open: repeated failures,
 * an unreachable server, or a stalled link (stall-probe.ts) stopped
 * offloading; after a cool-down a half-open probe (ServerReady) decides
 * whether to close again. The probe waits for the channel to connect, up to
 * the longest cool-down, so a stalled link closes the circuit the moment it
 * moves again. A probe that fails fast (the connection itself broke, e.g.
 * keepalive gave up on it during an outage) is retried at once on a fresh
 * connection, which carries none of the old one's reconnect backoff; only
 * repeated fast failures back off.
 */
import type { Logger } from '../../shared/log.js';

/** Circuit-breaker view of the cloud tier (closed: offload; open/half-open: do not count on it). */
export type CircuitState = 'closed' | 'open' | 'half-open';

export interface CloudHealth {
  state: CircuitState;
  consecutiveFailures: number;
  /** Why the circuit is not closed (or the last failure), for placement reasons. */
  lastError?: string;
}

export interface BreakerOptions {
  /** Consecutive failures that open the circuit; an unreachable server opens it at once. */
  failureThreshold: number;
  /** First wait before a probe; doubles while probes keep failing fast, up to maxCoolDownMs (also how long a probe may wait). */
  coolDownMs: number;
  maxCoolDownMs: number;
  /** The probe at start, and the link estimator's RTT probes. */
  probeTimeoutMs: number;
}

export const defaultBreakerOptions: BreakerOptions = { failureThreshold: 3, coolDownMs: 1_000, maxCoolDownMs: 10_000, probeTimeoutMs: 2_000 };

export interface BreakerHooks {
  /** Resolves when the cloud is ready to serve (ServerReady), on a fresh connection when `fresh`. */
  probe(timeoutMs: number, fresh: boolean): Promise<void>;
  /** The circuit closed: open the stream again. */
  closed(): void;
}

/** A probe failing faster than this share of its timeout found a broken connection rather than a silent link. */
const FAST_FAILURE_SHARE = 0.5;

export class CircuitBreaker {
  private readonly circuit: CloudHealth = { state: 'closed', consecutiveFailures: 0 };
  private coolDownMs: number;
  private probeTimer: NodeJS.Timeout | undefined;
  private lastProbeFailedFast = false;
  private stopped = false;

  constructor(
    private readonly options: BreakerOptions,
    private readonly cloud: string,
    private readonly log: Logger,
    private readonly hooks: BreakerHooks,
  ) {
    this.coolDownMs = options.coolDownMs;
  }

  health(): CloudHealth {
    return { ...this.circuit };
  }

  get closed(): boolean {
    return this.circuit.state === 'closed';
  }

  /** The first check, at start: an unreachable cloud opens the circuit instead of failing start-up. */
  start(): Promise<void> {
    return this.probe(this.options.probeTimeoutMs, false);
  }

  recordSuccess(): void {
    this.circuit.consecutiveFailures = 0;
  }

  /** A failure that says the cloud is unhealthy; `unreachable` opens the circuit at once. */
  recordFailure(reason: string, unreachable = false): void {
    this.circuit.consecutiveFailures++;
    this.circuit.lastError = reason;
    if (this.closed && (unreachable || this.circuit.consecutiveFailures >= this.options.failureThreshold)) this.open(reason);
  }

  /** Opens the circuit now (the link stalled): returns false when it was not closed. */
  trip(reason: string): boolean {
    if (this.stopped || !this.closed) return false;
    this.circuit.consecutiveFailures++;
    this.open(reason);
    return true;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.probeTimer);
  }

  private open(reason: string, delayMs = this.coolDownMs): void {
    this.circuit.state = 'open';
    this.circuit.lastError = reason;
    this.log.warn({ cloud: this.cloud, reason, probeInMs: delayMs }, 'cloud tier circuit open: not offloading until a probe succeeds');
    const fresh = this.lastProbeFailedFast;
    this.probeTimer = setTimeout(() => void this.probe(this.options.maxCoolDownMs, fresh), delayMs);
    this.probeTimer.unref();
  }

  /**
   * Half-open probe. ServerReady rather than ServerLive: a draining replica is
   * live but refuses every request, and the circuit must stay open for it.
   */
  private async probe(timeoutMs: number, fresh: boolean): Promise<void> {
    this.circuit.state = 'half-open';
    const started = performance.now();
    try {
      await this.hooks.probe(timeoutMs, fresh);
    } catch (err) {
      if (this.stopped) return;
      const failedFast = performance.now() - started < timeoutMs * FAST_FAILURE_SHARE;
      // A first fast failure is a dead connection: try a fresh one now. Fast again: the server refuses, so back off.
      const retryNow = failedFast && !this.lastProbeFailedFast;
      this.lastProbeFailedFast = failedFast;
      this.open(`unreachable (${err instanceof Error ? err.message : String(err)})`, retryNow ? 0 : this.coolDownMs);
      if (!retryNow) this.coolDownMs = Math.min(this.coolDownMs * 2, this.options.maxCoolDownMs);
      return;
    }
    if (this.stopped) return;
    if (this.circuit.lastError) this.log.info({ cloud: this.cloud, after: this.circuit.lastError }, 'cloud tier reachable again: circuit closed');
    this.circuit.state = 'closed';
    this.circuit.consecutiveFailures = 0;
    delete this.circuit.lastError;
    this.coolDownMs = this.options.coolDownMs;
    this.lastProbeFailedFast = false;
    this.hooks.closed();
  }
}
