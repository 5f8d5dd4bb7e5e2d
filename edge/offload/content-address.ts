/**
 * Content-addressed offload, the edge's half: before uploading a large
 * input, ask the cloud by its digest (shared/pipeline-wire.ts
 * `digestOnlyRequest`); the cloud answers from its response cache, or with
 * `content_needed` and the edge then sends the full request. A miss costs
 * one extra round trip, so the edge asks first only when that bet pays:
 *
 *  - always for a digest the cloud is known to hold (it answered it, by
 *    digest or in full with its cache consulted), remembered for the last
 *    4096 digests: a fixed camera's unchanged snapshot, a repeat;
 *  - for a new digest, when hitRate × upload time > (1 − hitRate) × RTT
 *    (the link estimator's upload time for these bytes and its high RTT),
 *    where hitRate is how often new digests were found (a moving average
 *    from a prior of 0.3, floored at 0.05 so a very large upload still
 *    tries now and then): the product photo that many devices send;
 *  - never for a model whose answers never reported `cache_hit` (the cloud
 *    caches nothing for it, so every ask would miss), and never again after
 *    a server refused the digest-only form (a server without this extension).
 */
import type { Logger } from '../../shared/log.js';

/** What the decision reads from the link estimator. */
export interface LinkCosts {
  rttEstimate(): { high: number } | undefined;
  /** Time to send `bytes` up; absent or undefined while unknown. */
  uploadEstimate?(bytes: number): { meanMs: number } | undefined;
}

const PRIOR_HIT_RATE = 0.3;
const MIN_HIT_RATE = 0.05;
/** Weight of each new-digest outcome in the moving hit rate. */
const HIT_RATE_ALPHA = 0.1;
const REMEMBER_DIGESTS = 4096;

export class ContentAddressing {
  /** Digests the cloud holds answers for, oldest first. */
  private readonly held = new Map<string, true>();
  /** Models whose answers said the cloud consulted its cache. */
  private readonly cachingModels = new Set<string>();
  private hitRate = PRIOR_HIT_RATE;
  private refusedBy: string | undefined;
  asked = 0;
  found = 0;

  constructor(
    private readonly enabled: boolean,
    private readonly log: Logger,
  ) {}

  /** Whether to ask for `digest` before uploading `payloadBytes`. */
  shouldAsk(model: string, digest: string, payloadBytes: number, link: LinkCosts | undefined): boolean {
    if (!this.enabled || this.refusedBy !== undefined || !this.cachingModels.has(model)) return false;
    if (this.held.has(digest)) return true;
    const rttMs = link?.rttEstimate()?.high;
    const uploadMs = link?.uploadEstimate?.(payloadBytes)?.meanMs;
    if (rttMs === undefined || uploadMs === undefined) return false;
    return this.hitRate * uploadMs > (1 - this.hitRate) * rttMs;
  }

  /** What the cloud answered to a digest-only request. */
  answeredByDigest(digest: string, found: boolean): void {
    this.asked++;
    if (found) this.found++;
    if (!this.held.has(digest)) this.hitRate = Math.max(MIN_HIT_RATE, (1 - HIT_RATE_ALPHA) * this.hitRate + HIT_RATE_ALPHA * (found ? 1 : 0));
    if (found) this.remember(digest);
    else this.held.delete(digest);
  }

  /** The cloud answered the full request; `cacheConsulted`: the answer carried `cache_hit`, so the cloud holds it now. */
  answeredInFull(model: string, digest: string, cacheConsulted: boolean): void {
    if (!cacheConsulted) return;
    this.cachingModels.add(model);
    this.remember(digest);
  }

  /** The server refused the digest-only form: it does not speak it, so stop asking. */
  refused(server: string, reason: string): void {
    if (this.refusedBy !== undefined) return;
    this.refusedBy = server;
    this.log.warn({ cloud: server, reason }, 'the cloud tier refused a content-addressed request (content_sha256); uploading every input in full from now on');
  }

  private remember(digest: string): void {
    this.held.delete(digest);
    this.held.set(digest, true);
    if (this.held.size > REMEMBER_DIGESTS) this.held.delete(this.held.keys().next().value!);
  }
}
