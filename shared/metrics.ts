import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Inference metrics named after Triton's (nv_inference_*) where the meaning
 * matches, so existing Triton dashboards read them; the latency histogram is
 * ours (Triton exposes cumulative microsecond counters only).
 */
export interface InferenceMetrics {
  readonly registry: Registry;
  readonly requestSuccess: Counter<'model' | 'version'>;
  readonly requestFailure: Counter<'model' | 'version' | 'reason'>;
  readonly queueDurationUs: Counter<'model' | 'version'>;
  readonly computeDurationUs: Counter<'model' | 'version'>;
  readonly requestDurationUs: Counter<'model' | 'version'>;
  readonly requestSeconds: Histogram<'model' | 'version'>;
  /** Sequences of sequence models (video-encoder) open now, and those freed after their idle timeout. */
  readonly liveSequences: Gauge<'model'>;
  readonly expiredSequences: Counter<'model'>;
  /** Approximate bytes their state holds (bounded per sequence by the clip summary's caps). */
  readonly sequenceStateBytes: Gauge<'model'>;
  /** How many requests shared the session run of each successful request (dynamic batching; 1 = alone). */
  readonly batchSize: Histogram<'model' | 'version'>;
  /** Response cache, Triton's names: lookups that found an answer, and those that did not (the request then ran). */
  readonly cacheHits: Counter<'model' | 'version'>;
  readonly cacheMisses: Counter<'model' | 'version'>;
  /** Time of hits (lookup and answer), and of misses (lookup and insert), in microseconds. */
  readonly cacheHitDurationUs: Counter<'model' | 'version'>;
  readonly cacheMissDurationUs: Counter<'model' | 'version'>;
  /** Bytes the in-process cache holds now. */
  readonly cacheBytes: Gauge;
  /** Redis commands of the shared cache tier that failed or timed out (each a miss), and failed connection attempts. */
  readonly cacheRedisErrors: Counter<'operation'>;
  /** Content-addressed requests (digest only): answered from the cache, or answered `content_needed`. */
  readonly cacheContentLookups: Counter<'model' | 'found'>;
  /** Model loads and reloads (RepositoryModelLoad, the poll mode, start-up), by outcome success|failure. */
  readonly modelLoads: Counter<'model' | 'outcome'>;
  /** Shadow copies by outcome: agree|disagree with the primary's answer, failed, or skipped (too many in flight). */
  readonly shadowAnswers: Counter<'model' | 'version' | 'shadow_version' | 'outcome'>;
  /** Per tenant (a bounded label: tenants the config names, else 'other'): requests by outcome (OK or the gRPC status name). */
  readonly tenantRequests: Counter<'tenant' | 'code'>;
  /** Requests refused at arrival by a tenant quota ('rate' or 'concurrent'; a full queue counts as RESOURCE_EXHAUSTED above). */
  readonly tenantQuotaRefusals: Counter<'tenant' | 'limit'>;
  /** Each tenant's requests in the server now. */
  readonly tenantInFlight: Gauge<'tenant'>;
  /** Cumulative time each tenant's requests spent queued, in microseconds. */
  readonly tenantQueueDurationUs: Counter<'tenant'>;
}

export function createInferenceMetrics(prefixLabels: Record<string, string> = {}): InferenceMetrics {
  const registry = new Registry();
  registry.setDefaultLabels(prefixLabels);
  collectDefaultMetrics({ register: registry });
  const labelNames = ['model', 'version'] as const;
  return {
    registry,
    requestSuccess: new Counter({ name: 'nv_inference_request_success', help: 'Number of successful inference requests', labelNames, registers: [registry] }),
    requestFailure: new Counter({
      name: 'nv_inference_request_failure',
      help: 'Number of failed inference requests, by gRPC status name',
      labelNames: [...labelNames, 'reason'],
      registers: [registry],
    }),
    queueDurationUs: new Counter({ name: 'nv_inference_queue_duration_us', help: 'Cumulative time requests spent queued, in microseconds', labelNames, registers: [registry] }),
    computeDurationUs: new Counter({
      name: 'nv_inference_compute_infer_duration_us',
      help: 'Cumulative time spent computing (pre-processing, inference, post-processing), in microseconds',
      labelNames,
      registers: [registry],
    }),
    requestDurationUs: new Counter({ name: 'nv_inference_request_duration_us', help: 'Cumulative end-to-end request time in the server, in microseconds', labelNames, registers: [registry] }),
    requestSeconds: new Histogram({
      name: 'splitinfer_request_duration_seconds',
      help: 'End-to-end request time in the server',
      labelNames,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    liveSequences: new Gauge({ name: 'splitinfer_sequences_live', help: 'Sequences open with state kept between chunks', labelNames: ['model'], registers: [registry] }),
    expiredSequences: new Counter({
      name: 'splitinfer_sequences_expired_total',
      help: 'Sequences freed after their idle timeout without a sequence_end',
      labelNames: ['model'],
      registers: [registry],
    }),
    sequenceStateBytes: new Gauge({
      name: 'splitinfer_sequences_state_bytes',
      help: 'Approximate bytes of state held by open sequences',
      labelNames: ['model'],
      registers: [registry],
    }),
    batchSize: new Histogram({
      name: 'splitinfer_batch_size',
      help: 'Requests that shared the session run of each successful request (dynamic batching; 1 = ran alone)',
      labelNames,
      buckets: [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64],
      registers: [registry],
    }),
    cacheHits: new Counter({ name: 'nv_cache_num_hits_per_model', help: 'Number of response cache hits per model', labelNames, registers: [registry] }),
    cacheMisses: new Counter({ name: 'nv_cache_num_misses_per_model', help: 'Number of response cache misses per model', labelNames, registers: [registry] }),
    cacheHitDurationUs: new Counter({
      name: 'nv_cache_hit_duration_per_model',
      help: 'Cumulative time of response cache hits (lookup and answer) per model, in microseconds',
      labelNames,
      registers: [registry],
    }),
    cacheMissDurationUs: new Counter({
      name: 'nv_cache_miss_duration_per_model',
      help: 'Cumulative time of response cache misses (lookup and insert) per model, in microseconds',
      labelNames,
      registers: [registry],
    }),
    cacheBytes: new Gauge({ name: 'splitinfer_cache_bytes', help: 'Bytes held by the in-process response cache', registers: [registry] }),
    cacheRedisErrors: new Counter({
      name: 'splitinfer_cache_redis_errors_total',
      help: 'Redis commands of the shared response cache that failed or timed out (each answered as a miss), and failed connection attempts',
      labelNames: ['operation'],
      registers: [registry],
    }),
    cacheContentLookups: new Counter({
      name: 'splitinfer_cache_content_lookups_total',
      help: 'Content-addressed requests (input digests, no contents): found in the response cache, or answered content_needed',
      labelNames: ['model', 'found'],
      registers: [registry],
    }),
    modelLoads: new Counter({ name: 'splitinfer_model_loads_total', help: 'Model loads and reloads, by outcome (success, failure)', labelNames: ['model', 'outcome'], registers: [registry] }),
    shadowAnswers: new Counter({
      name: 'splitinfer_shadow_answers_total',
      help: "Copies of requests run on a model's shadow version, by outcome: agree or disagree with the answer returned, failed, skipped",
      labelNames: ['model', 'version', 'shadow_version', 'outcome'],
      registers: [registry],
    }),
    tenantRequests: new Counter({
      name: 'splitinfer_tenant_requests_total',
      help: "Inference requests per tenant, by outcome (OK or the gRPC status name); tenants not in the config count as 'other'",
      labelNames: ['tenant', 'code'],
      registers: [registry],
    }),
    tenantQuotaRefusals: new Counter({
      name: 'splitinfer_tenant_quota_refusals_total',
      help: 'Requests refused on arrival because their tenant was over a quota (rate: requestsPerSecond; concurrent: maxConcurrent)',
      labelNames: ['tenant', 'limit'],
      registers: [registry],
    }),
    tenantInFlight: new Gauge({ name: 'splitinfer_tenant_in_flight', help: 'Requests of each tenant in the server now, waiting or running', labelNames: ['tenant'], registers: [registry] }),
    tenantQueueDurationUs: new Counter({
      name: 'splitinfer_tenant_queue_duration_us',
      help: 'Cumulative time requests of each tenant spent queued, in microseconds',
      labelNames: ['tenant'],
      registers: [registry],
    }),
  };
}

/** Serves `GET /metrics` in the Prometheus text format. */
export async function serveMetrics(registry: Registry, port: number, host: string): Promise<Server> {
  const server = createServer(async (req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at GET /metrics\n');
      return;
    }
    try {
      const body = await registry.metrics();
      res.writeHead(200, { 'content-type': registry.contentType }).end(body);
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}

export function boundPort(server: Server): number {
  return (server.address() as AddressInfo).port;
}
