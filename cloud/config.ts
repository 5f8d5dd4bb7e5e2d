import type { SchemaObject } from 'ajv';
import { loadConfig } from '../shared/config.js';
import { tracingConfigSchema, type TracingConfig } from '../shared/tracing.js';
import type { BatchingOptions } from '../shared/ort/batching-session.js';
import { authConfigSchema, type AuthConfig } from './auth.js';
import { versionPoliciesSchema, type VersionPolicy } from './version-routing.js';

/**
 * Triton's priority_levels and default_priority_level for a model's queue
 * (shared/run-queue.ts): 0 levels is one; with levels, a request's
 * `priority` 1 … priorityLevels picks one (1 served first), 0 or out of
 * range gets the default.
 */
export interface PriorityLevels {
  priorityLevels: number;
  defaultPriorityLevel: number;
}

export interface CloudConfig {
  host: string;
  port: number;
  /** Plaintext gRPC on a non-loopback host (something in front of the server encrypts); see server-credentials.ts. */
  insecure: boolean;
  /** PEM files; empty strings are unset. With clientCa, every client needs a certificate that CA signed. */
  tls: { cert: string; key: string; clientCa: string };
  auth: AuthConfig;
  /** Prometheus endpoint port; 0 picks a free one, -1 disables it. */
  metricsPort: number;
  /** Loopback by default: metrics name models and tenants' traffic, so exposing them is a choice. */
  metricsHost: string;
  /** Path of the model catalog; empty means the one shipped in models/. */
  catalog: string;
  /** Catalog model ids to serve; empty means all. */
  models: string[];
  /** Variant loaded for every model (the cloud keeps full precision). */
  variant: string;
  /** Execution providers in order of preference; cpu is always appended as the last resort. */
  providers: string[];
  /** ORT intra-op threads per session; 0 lets the runtime pick (all cores). */
  intraOpThreads: number;
  limits: {
    /** Largest gRPC message accepted or sent, in bytes. */
    maxMessageBytes: number;
    /** Requests waiting per model beyond those running; more are refused with RESOURCE_EXHAUSTED. */
    maxQueuePerModel: number;
    /** Requests of one model computed at once (pre/post-processing of one overlaps inference of another). */
    concurrencyPerModel: number;
    /** HTTP/2 streams (calls) one connection may have open at once; a client's further calls wait for one to end (HTTP/2 flow control, not an error). */
    maxStreamsPerConnection: number;
    /** Requests of one ModelStreamInfer stream waiting or running at once; one more is answered in-stream with RESOURCE_EXHAUSTED. */
    maxInFlightPerStream: number;
  } & PriorityLevels;
  /** State of sequence models (video-encoder) between chunks; see sequences.ts. */
  sequences: {
    /**
     * A sequence with no chunk for this long is freed. Triton's default
     * (max_sequence_idle_microseconds) is 1 s, made for streams of small
     * requests; an edge sends a 16-frame chunk per 4 s of media at 4 fps,
     * plus upload and queueing on a slow link, so 30 s lets a few chunks be
     * late before a sequence is dropped.
     */
    idleTimeoutMs: number;
    /** Sequences open at once; a new one beyond is refused with RESOURCE_EXHAUSTED. */
    maxSequences: number;
  };
  /**
   * Triton's dynamic batching, per catalog model id: that model's graphs
   * whose tensors all have a free leading dimension run behind a batcher
   * (shared/ort/batching-session.ts). A model not named runs one request
   * per session run, as Triton does without `dynamic_batching`.
   */
  batching: Record<string, BatchingOptions & PriorityLevels>;
  /** Response cache (response-cache.ts); off when bytes is 0 and no Redis is set. */
  cache: {
    /** In-process LRU budget in bytes (keys, answers and bookkeeping). */
    bytes: number;
    /** The tier shared by every replica (redis-cache.ts); off when url is empty. */
    redis: {
      /** redis://[user:password@]host:port[/db], rediss:// for TLS. */
      url: string;
      /** Entries expire after this many seconds (Redis's own maxmemory policy bounds the total). */
      ttlS: number;
      /** Larger answers stay in-process only. */
      maxEntryBytes: number;
      /** A Redis command not answered in this long is a cache miss. */
      timeoutMs: number;
    };
  };
  /** On SIGTERM, how long in-flight requests get to finish before the process exits anyway (also: how long a version replaced by a reload waits for its requests). */
  drainTimeoutMs: number;
  /** Optional export of infer spans over OTLP/HTTP (shared/tracing.ts). */
  tracing: TracingConfig;
  /** Per catalog model id: the variants loaded as its versions, their A/B weights and a shadow version (version-routing.ts). */
  versions: Record<string, VersionPolicy>;
  /** Triton's model repository extension and the poll mode (repository.ts, repository-rpc.ts). */
  repository: {
    /** RepositoryIndex, RepositoryModelLoad and RepositoryModelUnload answer; off: FAILED_PRECONDITION. */
    control: boolean;
    /** With auth on, the tenants that may call them; with auth off they answer on a loopback host only. */
    adminTenants: string[];
    /** Every this many seconds, reload a loaded model whose catalog entry or graph files changed; 0 is off. */
    pollIntervalS: number;
  };
}

const priorityLevelsProperties: Record<string, SchemaObject> = {
  priorityLevels: { type: 'integer', minimum: 0, default: 0 },
  defaultPriorityLevel: { type: 'integer', minimum: 0, default: 0 },
};

export const cloudConfigSchema: SchemaObject = {
  type: 'object',
  additionalProperties: false,
  required: [],
  properties: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'integer', minimum: 0, maximum: 65535, default: 8001 },
    insecure: { type: 'boolean', default: false },
    tls: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: { cert: { type: 'string', default: '' }, key: { type: 'string', default: '' }, clientCa: { type: 'string', default: '' } },
    },
    auth: authConfigSchema,
    metricsPort: { type: 'integer', minimum: -1, maximum: 65535, default: 8002 },
    metricsHost: { type: 'string', default: '127.0.0.1' },
    catalog: { type: 'string', default: '' },
    models: { type: 'array', items: { type: 'string' }, default: [] },
    variant: { type: 'string', default: 'fp32' },
    providers: { type: 'array', items: { type: 'string', enum: ['cuda', 'cpu'] }, minItems: 1, default: ['cpu'] },
    intraOpThreads: { type: 'integer', minimum: 0, default: 0 },
    limits: {
      type: 'object',
      additionalProperties: false,
      required: [],
      default: {},
      properties: {
        maxMessageBytes: { type: 'integer', minimum: 1024, default: 32 * 1024 * 1024 },
        maxQueuePerModel: { type: 'integer', minimum: 0, default: 64 },
        concurrencyPerModel: { type: 'integer', minimum: 1, default: 2 },
        maxStreamsPerConnection: { type: 'integer', minimum: 1, default: 100 },
        maxInFlightPerStream: { type: 'integer', minimum: 1, default: 256 },
        ...priorityLevelsProperties,
      },
    },
    sequences: {
      type: 'object',
      additionalProperties: false,
      required: [],
      default: {},
      properties: {
        idleTimeoutMs: { type: 'integer', minimum: 1, default: 30_000 },
        // Each holds well under 1 MB even at the summary's caps (4096 segments and boundaries), so 1024 stay under ~0.5 GB.
        maxSequences: { type: 'integer', minimum: 1, default: 1024 },
      },
    },
    batching: {
      type: 'object',
      default: {},
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: [],
        properties: {
          maxBatchSize: { type: 'integer', minimum: 1, default: 8 },
          // Triton's default: batch only what queued while the worker was busy.
          maxQueueDelayUs: { type: 'integer', minimum: 0, default: 0 },
          preferredBatchSizes: { type: 'array', items: { type: 'integer', minimum: 1 }, default: [] },
          maxQueueSize: { type: 'integer', minimum: 1, default: 64 },
          ...priorityLevelsProperties,
        },
      },
    },
    cache: {
      type: 'object',
      additionalProperties: false,
      required: [],
      default: {},
      properties: {
        bytes: { type: 'integer', minimum: 0, default: 0 },
        redis: {
          type: 'object',
          additionalProperties: false,
          required: [],
          default: {},
          properties: {
            url: { type: 'string', pattern: '^(rediss?://.+)?$', default: '' },
            ttlS: { type: 'integer', minimum: 1, default: 3600 },
            maxEntryBytes: { type: 'integer', minimum: 1, default: 4 * 1024 * 1024 },
            // Redis answers in well under a millisecond nearby; past this it is down or overloaded, and waiting would cost more than running.
            timeoutMs: { type: 'integer', minimum: 1, default: 50 },
          },
        },
      },
    },
    drainTimeoutMs: { type: 'integer', minimum: 0, default: 30_000 },
    tracing: tracingConfigSchema('splitinfer-cloud'),
    versions: versionPoliciesSchema,
    repository: {
      type: 'object',
      additionalProperties: false,
      required: [],
      default: {},
      properties: {
        control: { type: 'boolean', default: false },
        adminTenants: { type: 'array', items: { type: 'string', minLength: 1 }, default: [] },
        pollIntervalS: { type: 'number', minimum: 0, default: 0 },
      },
    },
  },
};

export function loadCloudConfig(file?: string, overrides: Record<string, unknown> = {}): CloudConfig {
  return loadConfig<CloudConfig>(cloudConfigSchema, file, overrides);
}
