/**
 * Optional OpenTelemetry export of each request's span (the edge's request,
 * the cloud's infer) over OTLP/HTTP, when config `tracing.otlpEndpoint` is
 * set. Off by default, and then nothing of OpenTelemetry is even loaded: a
 * request still gets its `traceparent` (trace-context.ts) for the logs.
 */
import type { Logger } from './log.js';
import { formatTraceparent, newTraceContext, type TraceContext } from './trace-context.js';

export interface TracingConfig {
  /** OTLP/HTTP traces URL (e.g. http://collector:4318/v1/traces); empty: no export. */
  otlpEndpoint: string;
  /** The `service.name` resource attribute of exported spans. */
  serviceName: string;
}

export const tracingConfigSchema = (serviceName: string) => ({
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    otlpEndpoint: { type: 'string', default: '', pattern: '^(https?://.+)?$' },
    serviceName: { type: 'string', minLength: 1, default: serviceName },
  },
});

export type SpanAttributes = Record<string, string | number | boolean | undefined>;

export interface RequestSpan {
  /** This span's context as a header: what the logs show and what goes on to the next tier. */
  readonly traceparent: string;
  /** Ends the span; `failure` marks it as an error. */
  end(attributes?: SpanAttributes, failure?: string): void;
}

export interface RequestTracer {
  /** A span for one request under the caller's context (none: a new trace). */
  start(name: string, parent: TraceContext | undefined, attributes?: SpanAttributes): RequestSpan;
  /** Sends what is buffered and stops exporting. */
  close(): Promise<void>;
}

/** Without export: the caller's context passes through unchanged (a new one when there is none). */
export const passThroughTracer: RequestTracer = {
  start: (_name, parent) => ({ traceparent: formatTraceparent(parent ?? newTraceContext()), end: () => undefined }),
  close: async () => undefined,
};

export async function startTracing(config: TracingConfig, log: Logger): Promise<RequestTracer> {
  if (!config.otlpEndpoint) return passThroughTracer;
  const [api, { BasicTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { resourceFromAttributes }] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
  ]);
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': config.serviceName }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: config.otlpEndpoint }))],
  });
  const tracer = provider.getTracer('splitinfer');
  log.info({ otlpEndpoint: config.otlpEndpoint, serviceName: config.serviceName }, 'exporting trace spans over OTLP/HTTP');
  return {
    start(name, parent, attributes) {
      const context = parent
        ? api.trace.setSpanContext(api.ROOT_CONTEXT, { traceId: parent.traceId, spanId: parent.spanId, traceFlags: parent.flags, isRemote: true })
        : api.ROOT_CONTEXT;
      const span = tracer.startSpan(name, { kind: api.SpanKind.SERVER, attributes: defined(attributes) }, context);
      const { traceId, spanId, traceFlags } = span.spanContext();
      return {
        traceparent: formatTraceparent({ traceId, spanId, flags: traceFlags }),
        end(endAttributes, failure) {
          span.setAttributes(defined(endAttributes));
          if (failure !== undefined) span.setStatus({ code: api.SpanStatusCode.ERROR, message: failure });
          span.end();
        },
      };
    },
    async close() {
      await provider.shutdown().catch((err: Error) => log.warn({ err: err.message, otlpEndpoint: config.otlpEndpoint }, 'trace spans not exported at shutdown'));
    },
  };
}

function defined(attributes: SpanAttributes = {}): Record<string, string | number | boolean> {
  return Object.fromEntries(Object.entries(attributes).filter((entry): entry is [string, string | number | boolean] => entry[1] !== undefined));
}
