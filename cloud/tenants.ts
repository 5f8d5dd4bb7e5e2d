/**
 * Tenants' quotas and shares (the tenants are auth.ts's identities; an
 * unidentified caller belongs to `auth.defaultTenant`, so all anonymous
 * traffic shares one quota). Per tenant: a request rate (token bucket with a
 * burst) and a bound on its requests in the server at once, checked when a
 * request arrives; its weight in each model's fair queue, how many of its
 * requests may wait there, and its default priority level, applied in the
 * model's RunQueue. Over a quota a request is refused with RESOURCE_EXHAUSTED
 * and a `retryAfterMs` the server sends as trailing metadata.
 */
import type { Counter, Gauge } from 'prom-client';
import type { SchemaObject } from 'ajv';
import { InferError } from '../shared/errors.js';
import type { QueueTicket } from '../shared/run-queue.js';
import { TokenBucket } from './token-bucket.js';

/** One `auth.tenants` entry; 0 is "no limit" for every bound. */
export interface TenantSettings {
  /** Model names it may call; empty: any. */
  models: string[];
  /** Average requests per second (token bucket refill). */
  requestsPerSecond: number;
  /** Requests it may send at once after a quiet spell; 0: requestsPerSecond rounded up. */
  burst: number;
  /** Its requests in the server at once, waiting or running, across models. */
  maxConcurrent: number;
  /** Its requests waiting in one model's queue. */
  maxQueued: number;
  /** Its default priority level and the best it may ask for (1 highest); 0: the model's default, any level may be asked. */
  priority: number;
  /** Its share of a model's queue against other tenants with requests waiting at the same level. */
  weight: number;
}

/** The properties of an `auth.tenants` entry beyond `models` (auth.ts owns the entry). */
export const tenantSettingsProperties: Record<string, SchemaObject> = {
  requestsPerSecond: { type: 'number', minimum: 0, default: 0 },
  burst: { type: 'integer', minimum: 0, default: 0 },
  maxConcurrent: { type: 'integer', minimum: 0, default: 0 },
  maxQueued: { type: 'integer', minimum: 0, default: 0 },
  priority: { type: 'integer', minimum: 0, default: 0 },
  weight: { type: 'number', exclusiveMinimum: 0, default: 1 },
};

/** What Tenants reads of the auth config. */
export interface TenantsConfig {
  defaultTenant: string;
  tenants: Record<string, Partial<TenantSettings>>;
  apiKeys: { tenant: string }[];
  mtlsTenants: Record<string, string>;
}

export interface TenantMetrics {
  quotaRefusals: Counter<'tenant' | 'limit'>;
  inFlight: Gauge<'tenant'>;
}

export class Tenants {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly inFlight = new Map<string, number>();
  /** Every tenant config names: metric labels come from this set, 'other' for anything else. */
  private readonly known: Set<string>;

  constructor(
    private readonly config: TenantsConfig,
    private readonly metrics?: TenantMetrics,
    now?: () => number,
  ) {
    this.known = new Set([config.defaultTenant, ...Object.keys(config.tenants), ...config.apiKeys.map((k) => k.tenant), ...Object.values(config.mtlsTenants)]);
    for (const [tenant, settings] of Object.entries(config.tenants)) {
      const ratePerS = settings.requestsPerSecond ?? 0;
      if (ratePerS > 0) this.buckets.set(tenant, new TokenBucket({ ratePerS, burst: settings.burst || Math.ceil(ratePerS), now }));
    }
  }

  get defaultTenant(): string {
    return this.config.defaultTenant;
  }

  /** The tenant a call counts against: its identity's, or the default tenant's for an anonymous one. */
  tenantOf(identity: { tenant?: string }): string {
    return identity.tenant ?? this.config.defaultTenant;
  }

  /** A bounded metric label: a tenant the config names, else 'other'. */
  label(tenant: string): string {
    return this.known.has(tenant) ? tenant : 'other';
  }

  /**
   * Lets one request of `tenant` in, or refuses it with RESOURCE_EXHAUSTED
   * (retry hint: the token bucket's wait, or `slotRetryAfterMs` for the
   * concurrency bound); call the returned function when it is answered.
   */
  admit(tenant: string, slotRetryAfterMs: () => number): () => void {
    const label = this.label(tenant);
    const maxConcurrent = this.settings(tenant).maxConcurrent ?? 0;
    const running = this.inFlight.get(tenant) ?? 0;
    if (maxConcurrent > 0 && running >= maxConcurrent) {
      const retryAfterMs = slotRetryAfterMs();
      this.metrics?.quotaRefusals.inc({ tenant: label, limit: 'concurrent' });
      throw new InferError(
        'RESOURCE_EXHAUSTED',
        `tenant ${tenant} already has ${running} requests in the server (its maxConcurrent ${maxConcurrent}); retry after ~${retryAfterMs} ms, or raise auth.tenants.${tenant}.maxConcurrent`,
        { retryAfterMs },
      );
    }
    const waitMs = this.buckets.get(tenant)?.take() ?? 0;
    if (waitMs > 0) {
      const { requestsPerSecond, burst } = this.settings(tenant);
      this.metrics?.quotaRefusals.inc({ tenant: label, limit: 'rate' });
      throw new InferError(
        'RESOURCE_EXHAUSTED',
        `tenant ${tenant} is over its request rate (${requestsPerSecond}/s, burst ${burst || Math.ceil(requestsPerSecond!)}); retry after ${waitMs} ms, or raise auth.tenants.${tenant}.requestsPerSecond`,
        { retryAfterMs: waitMs },
      );
    }
    this.inFlight.set(tenant, running + 1);
    this.metrics?.inFlight.inc({ tenant: label });
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inFlight.set(tenant, this.inFlight.get(tenant)! - 1);
      this.metrics?.inFlight.dec({ tenant: label });
    };
  }

  /** Where a request waits in a model's queue: its tenant, and the priority it asked for held to its tenant's best. */
  ticket(tenant: string, requestedPriority = 0): QueueTicket {
    const best = this.settings(tenant).priority ?? 0;
    const priority = requestedPriority <= 0 ? best : best > 0 ? Math.max(requestedPriority, best) : requestedPriority;
    return { tenant, priority };
  }

  /** For RunQueue's `tenants` option. */
  weightOf(tenant: string): number {
    return this.settings(tenant).weight ?? 1;
  }

  maxQueuedOf(tenant: string): number {
    return this.settings(tenant).maxQueued || Infinity;
  }

  private settings(tenant: string): Partial<TenantSettings> {
    return this.config.tenants[tenant] ?? {};
  }
}
