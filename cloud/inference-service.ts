import * as grpc from '@grpc/grpc-js';
import { create } from '@bufbuild/protobuf';
import { GRPCInferenceService, ModelStreamInferResponseSchema, type ModelInferRequest } from '../shared/gen/inference/grpc_service_pb.js';
import { addService } from '../shared/grpc-service.js';
import { InferError, toInferError } from '../shared/errors.js';
import { numberParameter, stringParameter, stringParameterValue, ParameterNames } from '../shared/infer-parameters.js';
import type { Logger } from '../shared/log.js';
import { parseTraceparent, traceparentName, type TraceContext } from '../shared/trace-context.js';
import type { RequestTracer } from '../shared/tracing.js';
import type { InferenceMetrics } from '../shared/metrics.js';
import { pipelineInput, pipelineResult, streamFailure } from '../shared/pipeline-wire.js';
import { toV2Datatype } from '../shared/tensor-codec.js';
import type { TensorMeta } from '../shared/tensor.js';
import type { CallerOf, CloudAuth } from './auth.js';
import { infer } from './infer.js';
import type { CloudConfig } from './config.js';
import type { ModelRepository } from './repository.js';
import { repositoryHandlers } from './repository-rpc.js';
import type { ResponseCache } from './response-cache.js';
import type { SequenceStore } from './sequences.js';
import { ShadowRunner } from './shadow.js';
import type { Tenants } from './tenants.js';

export const SERVER_NAME = 'splitinfer';
/** Protocol extensions beyond the core v2 API (Triton reports its own list the same way). */
export const SERVER_EXTENSIONS = ['model_stream_infer', 'parameters', 'health', 'model_repository'];

/** An error as a gRPC status; a refusal for load carries its retry hint as `retry-after-ms` trailing metadata. */
export function toServiceError(err: unknown): Partial<grpc.StatusObject> {
  const e = toInferError(err);
  if (e.retryAfterMs === undefined) return { code: grpc.status[e.code], details: e.message };
  const metadata = new grpc.Metadata();
  metadata.set(retryAfterHeader, String(e.retryAfterMs));
  return { code: grpc.status[e.code], details: e.message, metadata };
}

/** Trailing metadata of a RESOURCE_EXHAUSTED answer: milliseconds after which a retry may be let in. */
export const retryAfterHeader = 'retry-after-ms';

/** State shared with the server for draining: new work is refused and in-flight work is counted. */
export interface ServiceState {
  draining: boolean;
  inFlight: number;
  /** Called whenever inFlight drops, so a drain can finish as soon as the last request does. */
  onIdle?: () => void;
}

export function addInferenceService(
  server: grpc.Server,
  deps: {
    repository: ModelRepository;
    sequences: SequenceStore;
    metrics: InferenceMetrics;
    log: Logger;
    version: string;
    state: ServiceState;
    auth: CloudAuth;
    /** Quotas and queue shares of the callers' tenants. */
    tenants: Tenants;
    /** Absent: every request runs. */
    cache?: ResponseCache;
    /** Spans for requests (shared/tracing.ts). */
    tracer: RequestTracer;
    /** For the repository RPCs' admin settings. */
    config: CloudConfig;
  },
): void {
  const { repository, sequences, metrics, log, version, state, auth, tenants, cache, tracer, config } = deps;
  const shadows = new ShadowRunner({ repository, sequences, metrics, log });
  const { maxInFlightPerStream } = config.limits;

  /**
   * One request from admission to metrics and log; shared by ModelInfer and
   * ModelStreamInfer. `signal` aborts when the caller cancels: what still
   * waits for its model is dropped, not run.
   */
  async function serve(request: ModelInferRequest, call: CallerOf, signal?: AbortSignal) {
    if (state.draining) throw new InferError('UNAVAILABLE', 'server is shutting down; retry on another replica');
    const identity = auth.identifyCall(call);
    auth.authorize(identity, request.modelName);
    // An identified caller's tenant is its credentials', whatever the request's parameter says.
    if (identity.tenant !== undefined) request.parameters[ParameterNames.tenant] = stringParameter(identity.tenant);
    const tenant = tenants.tenantOf(identity);
    const tenantLabel = { tenant: tenants.label(tenant) };
    let release: () => void;
    try {
      release = tenants.admit(tenant, () => repository.resolve(request.modelName).queue.retryAfterMs);
    } catch (err) {
      metrics.tenantRequests.inc({ ...tenantLabel, code: toInferError(err).code });
      throw err;
    }
    state.inFlight++;
    const started = performance.now();
    const span = tracer.start('infer', requestTraceContext(request, call), { 'splitinfer.model': request.modelName, 'splitinfer.request_id': request.id });
    try {
      const outcome = await infer(repository, sequences, request, cache, tenants.ticket(tenant, numberParameter(request.parameters, ParameterNames.priority)), signal);
      shadows.copy(request, outcome);
      metrics.tenantRequests.inc({ ...tenantLabel, code: 'OK' });
      metrics.tenantQueueDurationUs.inc(tenantLabel, outcome.queueUs);
      const totalUs = Math.round((performance.now() - started) * 1000);
      const served = { model: outcome.served.name, version: outcome.served.version };
      metrics.requestSuccess.inc(served);
      if (outcome.contentFound !== undefined) metrics.cacheContentLookups.inc({ model: served.model, found: String(outcome.contentFound) });
      if (outcome.cache?.hit) {
        metrics.cacheHits.inc(served);
        metrics.cacheHitDurationUs.inc(served, outcome.cache.us);
      } else if (outcome.contentFound === undefined) {
        metrics.batchSize.observe(served, outcome.batchSize);
        if (outcome.cache) {
          metrics.cacheMisses.inc(served);
          metrics.cacheMissDurationUs.inc(served, outcome.cache.us);
          metrics.cacheBytes.set(cache!.bytes);
        }
      }
      metrics.queueDurationUs.inc(served, outcome.queueUs);
      metrics.computeDurationUs.inc(served, outcome.computeUs);
      metrics.requestDurationUs.inc(served, totalUs);
      metrics.requestSeconds.observe(served, totalUs / 1e6);
      log.info(
        {
          model: served.model,
          id: request.id,
          traceparent: span.traceparent,
          tenant: stringParameterValue(request.parameters, ParameterNames.tenant) ?? tenant,
          caller: identity.via,
          queueUs: outcome.queueUs,
          computeUs: outcome.computeUs,
          batchSize: outcome.batchSize,
          cacheHit: outcome.cache?.hit,
          totalUs,
        },
        'infer',
      );
      span.end({ 'splitinfer.queue_us': outcome.queueUs, 'splitinfer.compute_us': outcome.computeUs, 'splitinfer.batch_size': outcome.batchSize });
      return outcome.response;
    } catch (err) {
      const e = toInferError(err);
      metrics.requestFailure.inc({ ...failureLabels(request), reason: e.code });
      metrics.tenantRequests.inc({ ...tenantLabel, code: e.code });
      log[e.code === 'INTERNAL' ? 'error' : 'info']({ model: request.modelName, id: request.id, traceparent: span.traceparent, code: e.code, err: e.message }, 'infer failed');
      span.end({ 'splitinfer.error_code': e.code }, e.message);
      throw e;
    } finally {
      release();
      state.inFlight--;
      state.onIdle?.();
    }
  }

  /**
   * The caller's trace context: the request parameter (per request, on a
   * shared stream), else the call's gRPC metadata (Triton's convention for
   * any KServe client); neither: a new trace.
   */
  function requestTraceContext(request: ModelInferRequest, call: CallerOf): TraceContext | undefined {
    return parseTraceparent(stringParameterValue(request.parameters, ParameterNames.traceparent)) ?? parseTraceparent(call.metadata.get(traceparentName)[0]);
  }

  /** Labels a failure by the served name and version; unknown names share one series so clients cannot grow the registry. */
  function failureLabels(request: ModelInferRequest): { model: string; version: string } {
    try {
      const served = repository.resolve(request.modelName);
      return { model: served.name, version: served.version };
    } catch {
      return { model: '', version: '' };
    }
  }

  const tensorMetadata = (m: TensorMeta) => ({ name: m.name, datatype: toV2Datatype(m.type), shape: m.shape.map(BigInt) });

  addService(server, GRPCInferenceService, {
    serverLive: (_call, callback) => callback(null, { live: true }),
    serverReady: (_call, callback) => callback(null, { ready: !state.draining }),
    modelReady: (call, callback) => {
      try {
        auth.authorize(auth.identifyCall(call), call.request.name);
        const served = repository.resolve(call.request.name, call.request.version);
        callback(null, { ready: !state.draining && repository.serving(served.name, served.version) });
      } catch (err) {
        callback(toServiceError(err));
      }
    },
    serverMetadata: (_call, callback) => callback(null, { name: SERVER_NAME, version, extensions: SERVER_EXTENSIONS }),
    modelMetadata: (call, callback) => {
      try {
        auth.authorize(auth.identifyCall(call), call.request.name);
        const served = repository.resolve(call.request.name, call.request.version);
        const pipeline = served.kind === 'pipeline';
        callback(null, {
          name: served.name,
          versions: call.request.version === '' ? repository.versions(served.name) : [served.version],
          platform: pipeline ? 'splitinfer_pipeline' : 'onnxruntime_onnx',
          inputs: (pipeline ? (served.loaded.handler.sequence?.inputs ?? [pipelineInput]) : served.session.inputs).map(tensorMetadata),
          outputs: (pipeline ? [...served.loaded.handler.outputs, pipelineResult] : served.session.outputs).map(tensorMetadata),
        });
      } catch (err) {
        callback(toServiceError(err));
      }
    },
    modelInfer: (call, callback) => {
      const cancelled = new AbortController();
      call.on('cancelled', () => cancelled.abort());
      serve(call.request, call, cancelled.signal).then(
        (response) => callback(null, response),
        (err) => callback(toServiceError(err)),
      );
    },
    modelStreamInfer: (call) => {
      // Each request is answered as soon as it is done, in completion order; a
      // failed request is answered in-stream (pipeline-wire.ts) and the stream stays open.
      // A cancelled stream's requests still waiting for their model are dropped.
      let pending = 0;
      let clientDone = false;
      const cancelled = new AbortController();
      call.on('cancelled', () => cancelled.abort());
      const maybeEnd = () => {
        if (clientDone && pending === 0) call.end();
      };
      call.on('data', (request: ModelInferRequest) => {
        if (pending >= maxInFlightPerStream) {
          const message = `this stream already has ${pending} requests waiting or running, the limit (cloud limits.maxInFlightPerStream) — wait for answers before sending more, or open another stream`;
          metrics.requestFailure.inc({ ...failureLabels(request), reason: 'RESOURCE_EXHAUSTED' });
          call.write(streamFailure(request, new InferError('RESOURCE_EXHAUSTED', message)));
          return;
        }
        pending++;
        serve(request, call, cancelled.signal)
          .then(
            (inferResponse) => call.write(create(ModelStreamInferResponseSchema, { inferResponse })),
            (err) => call.write(streamFailure(request, err)),
          )
          .finally(() => {
            pending--;
            maybeEnd();
          });
      });
      call.on('end', () => {
        clientDone = true;
        maybeEnd();
      });
      call.on('error', (err) => log.debug({ err: err.message }, 'stream closed by client'));
    },
    ...repositoryHandlers({ repository, auth, config, log, toServiceError }),
  });
}
