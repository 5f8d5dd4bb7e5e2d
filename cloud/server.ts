import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Server as HttpServer } from 'node:http';
import type { Logger } from '../shared/log.js';
import { startTracing } from '../shared/tracing.js';
import { boundPort, createInferenceMetrics, serveMetrics, type InferenceMetrics } from '../shared/metrics.js';
import { packageRoot } from '../shared/paths.js';
import { CloudAuth } from './auth.js';
import type { CloudConfig } from './config.js';
import { HealthService, ServingStatus } from './health.js';
import { addInferenceService, type ServiceState } from './inference-service.js';
import { ModelRepository } from './repository.js';
import { RedisResponseStore } from './redis-cache.js';
import { pollRepository } from './repository-poll.js';
import { checkRepositoryControl } from './repository-rpc.js';
import { ResponseCache } from './response-cache.js';
import { SequenceStore } from './sequences.js';
import { Tenants } from './tenants.js';
import { serverTransport } from './server-credentials.js';

export interface CloudServer {
  readonly port: number;
  /** -1 when the metrics endpoint is off. */
  readonly metricsPort: number;
  readonly repository: ModelRepository;
  /** Per-sequence state of sequence models (video-encoder). */
  readonly sequences: SequenceStore;
  /** The response cache (in-process and/or Redis); undefined when cache.bytes is 0 and no Redis is set. */
  readonly cache: ResponseCache | undefined;
  readonly metrics: InferenceMetrics;
  readonly health: HealthService;
  /** How the port is protected and who may call, for the start-up log. */
  readonly security: { transport: string; auth: string; exposed: boolean };
  /** Graceful stop: health NOT_SERVING, new requests UNAVAILABLE, in-flight ones finish (up to timeoutMs), then close. */
  drain(timeoutMs: number): Promise<void>;
}

const version = (JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;

export async function startCloudServer(config: CloudConfig, log: Logger): Promise<CloudServer> {
  // Certificates and keys are read before the models load, so a wrong path fails in milliseconds.
  const transport = serverTransport(config);
  const auth = new CloudAuth(config.auth, transport.clientCertificates);
  checkRepositoryControl(config, auth);
  const metrics = createInferenceMetrics();
  const tenants = new Tenants(config.auth, { quotaRefusals: metrics.tenantQuotaRefusals, inFlight: metrics.tenantInFlight });
  const repository = await ModelRepository.open(config, log, metrics, tenants);
  const sequences = new SequenceStore(config.sequences, { live: metrics.liveSequences, expired: metrics.expiredSequences, bytes: metrics.sequenceStateBytes });
  const health = new HealthService();
  const state: ServiceState = { draining: false, inFlight: 0 };
  const server = new grpc.Server({
    // Oversize messages are refused by grpc-js itself with RESOURCE_EXHAUSTED.
    'grpc.max_receive_message_length': config.limits.maxMessageBytes,
    'grpc.max_send_message_length': config.limits.maxMessageBytes,
    // SETTINGS_MAX_CONCURRENT_STREAMS: one connection cannot hold every slot with calls; its further calls wait at the client.
    'grpc.max_concurrent_streams': config.limits.maxStreamsPerConnection,
    // Edges hold long-lived streams over flaky links; let their keepalive pings through.
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 5_000,
    interceptors: auth.interceptors(),
  });
  const shared = config.cache.redis.url ? new RedisResponseStore(config.cache.redis, log, metrics.cacheRedisErrors) : undefined;
  const cache = config.cache.bytes > 0 || shared ? new ResponseCache(config.cache.bytes, shared) : undefined;
  const tracer = await startTracing(config.tracing, log);
  addInferenceService(server, { repository, sequences, metrics, log, version, state, auth, tenants, cache, tracer, config });
  health.addTo(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`, transport.credentials, (err, bound) =>
      err ? reject(new Error(`cannot listen on ${config.host}:${config.port}: ${err.message}`)) : resolve(bound),
    ),
  ).catch(async (err) => {
    await cache?.close();
    await repository.close();
    throw err;
  });
  let metricsServer: HttpServer | undefined;
  if (config.metricsPort >= 0) {
    metricsServer = await serveMetrics(metrics.registry, config.metricsPort, config.metricsHost);
  }
  health.set('', ServingStatus.SERVING);
  // A model whose runtime worker died is NOT_SERVING until the worker is back (shared/ort/session.ts).
  const modelStatus = (serving: boolean) => (serving ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
  for (const name of repository.names()) health.set(name, modelStatus(repository.serving(name)));
  repository.watchServing((name, serving) => state.draining || health.set(name, modelStatus(serving)));
  const stopPolling = config.repository.pollIntervalS > 0 ? pollRepository(repository, config, log) : undefined;

  let drained: Promise<void> | undefined;
  return {
    port,
    metricsPort: metricsServer ? boundPort(metricsServer) : -1,
    repository,
    sequences,
    cache,
    metrics,
    health,
    security: { transport: transport.description, auth: auth.describe(), exposed: transport.exposed },
    drain(timeoutMs) {
      drained ??= (async () => {
        state.draining = true;
        health.setAll(ServingStatus.NOT_SERVING);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, timeoutMs);
          state.onIdle = () => {
            if (state.inFlight === 0) {
              clearTimeout(timer);
              resolve();
            }
          };
          state.onIdle();
        });
        health.endWatches();
        await new Promise<void>((resolve) => {
          const force = setTimeout(() => {
            server.forceShutdown();
            resolve();
          }, 1_000);
          server.tryShutdown(() => {
            clearTimeout(force);
            resolve();
          });
        });
        metricsServer?.close();
        sequences.close();
        await stopPolling?.();
        await cache?.close();
        await Promise.all([repository.close(), tracer.close()]);
      })();
      return drained;
    },
  };
}
