/**
 * Optional OpenTelemetry export: with `tracing.otlpEndpoint` set, the edge's
 * span of a request and the cloud's span of its infer reach an OTLP/HTTP
 * receiver (a small local HTTP server here) as one trace, the cloud's span a
 * child of the edge's, which is a child of the caller's traceparent. A
 * KServe client that names the trace in gRPC metadata gets the same.
 */
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { EdgeAgent } from '../../edge/agent.js';
import { loadEdgeConfig } from '../../edge/config.js';
import { freeLoopbackPort } from '../../edge/local-stack.js';
import { GRPCInferenceService } from '../../shared/gen/inference/grpc_service_pb.js';
import { callUnary } from '../../shared/grpc-service.js';
import { createLogger } from '../../shared/log.js';
import { pipelineRequest } from '../../shared/pipeline-wire.js';
import { startTracing } from '../../shared/tracing.js';
import { inferenceClient, startTestCloud } from '../helpers/cloud.js';
import { readFixture } from '../helpers/inference.js';

const log = createLogger('trace-test', process.env.SPLITINFER_LOG_LEVEL ?? 'silent');
const invoice = readFixture('ocr', 'invoice.png');
const callerTraceId = '4bf92f3577b34da6a3ce929d0e0e4736';
const callerSpanId = '00f067aa0ba902b7';

interface ExportedSpan {
  service: string;
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  attributes: Record<string, unknown>;
  status?: { code?: number };
}

/** An OTLP/HTTP (JSON) trace receiver: what the exporters posted, span by span. */
async function startReceiver(): Promise<{ url: string; spans: ExportedSpan[]; posts: string[]; server: Server }> {
  const spans: ExportedSpan[] = [];
  const posts: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      posts.push(`${req.method} ${req.url} ${req.headers['content-type']}`);
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      for (const resourceSpans of body.resourceSpans ?? []) {
        const service = resourceSpans.resource.attributes.find((a: { key: string }) => a.key === 'service.name')?.value.stringValue;
        for (const scope of resourceSpans.scopeSpans) {
          for (const span of scope.spans) {
            const attributes = Object.fromEntries(span.attributes.map((a: { key: string; value: Record<string, unknown> }) => [a.key, Object.values(a.value)[0]]));
            spans.push({ service, name: span.name, traceId: span.traceId, spanId: span.spanId, parentSpanId: span.parentSpanId, attributes, status: span.status });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`, spans, posts, server };
}

describe('OTLP span export', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  before(async () => {
    receiver = await startReceiver();
  });

  after(() => receiver.server.close());

  test("an offloaded request's edge and cloud spans reach the receiver as one trace", async () => {
    const cloud = await startTestCloud({ models: ['image-ocr'], metricsPort: -1, tracing: { otlpEndpoint: receiver.url } });
    const tracer = await startTracing({ otlpEndpoint: receiver.url, serviceName: 'splitinfer-edge' }, log);
    const agent = await EdgeAgent.start(loadEdgeConfig(undefined, { cloud: cloud.address, deviceId: 'traced-device' }), log, { tracer });
    try {
      const response = await agent.handle({ id: 'traced-1', inputs: { image: invoice }, traceparent: `00-${callerTraceId}-${callerSpanId}-01` });
      assert.equal(response.errors, undefined, JSON.stringify(response.errors));
      assert.equal(response.placement.image?.ran, 'cloud');
    } finally {
      await agent.close();
      await tracer.close();
      await cloud.server.drain(5_000);
    }
    const edgeSpan = receiver.spans.find((s) => s.name === 'edge request' && s.attributes['splitinfer.request_id'] === 'traced-1');
    assert.ok(edgeSpan, `no edge span among ${JSON.stringify(receiver.spans)}`);
    assert.equal(edgeSpan.service, 'splitinfer-edge');
    assert.equal(edgeSpan.traceId, callerTraceId);
    assert.equal(edgeSpan.parentSpanId, callerSpanId);
    assert.equal(edgeSpan.attributes['splitinfer.device_id'], 'traced-device');
    const cloudSpan = receiver.spans.find((s) => s.name === 'infer' && s.traceId === callerTraceId);
    assert.ok(cloudSpan, `no cloud span in trace ${callerTraceId}: ${JSON.stringify(receiver.spans)}`);
    assert.equal(cloudSpan.service, 'splitinfer-cloud');
    assert.equal(cloudSpan.parentSpanId, edgeSpan.spanId, "the cloud's span is the edge span's child");
    assert.equal(cloudSpan.attributes['splitinfer.model'], 'image-ocr');
    assert.ok(Number(cloudSpan.attributes['splitinfer.queue_us']) >= 0, JSON.stringify(cloudSpan.attributes));
    assert.ok(receiver.posts.every((p) => p === 'POST /v1/traces application/json'), receiver.posts.join('\n'));
  });

  test('a KServe client naming the trace in gRPC metadata gets a child span; a failed infer is an error span', async () => {
    const cloud = await startTestCloud({ models: ['image-ocr'], metricsPort: -1, tracing: { otlpEndpoint: receiver.url, serviceName: 'cloud-b' } });
    const client = inferenceClient(cloud.address);
    const traceId = 'a'.repeat(32);
    try {
      const metadata = new grpc.Metadata();
      metadata.set('traceparent', `00-${traceId}-${'b'.repeat(16)}-01`);
      await callUnary(client, GRPCInferenceService.method.modelInfer, pipelineRequest('image-ocr', invoice, { id: 'meta-1', resultOnly: true }), { metadata });
      await assert.rejects(callUnary(client, GRPCInferenceService.method.modelInfer, pipelineRequest('no-such-model', invoice, { id: 'meta-2' }), { metadata }));
    } finally {
      client.close();
      await cloud.server.drain(5_000);
    }
    const spans = receiver.spans.filter((s) => s.service === 'cloud-b');
    const ok = spans.find((s) => s.attributes['splitinfer.request_id'] === 'meta-1');
    const failed = spans.find((s) => s.attributes['splitinfer.request_id'] === 'meta-2');
    assert.equal(ok?.traceId, traceId);
    assert.equal(ok?.parentSpanId, 'b'.repeat(16));
    assert.equal(failed?.attributes['splitinfer.error_code'], 'NOT_FOUND');
    assert.equal(failed?.status?.code, 2, 'status ERROR');
  });

  test('an unreachable receiver costs one warning at shutdown, and the span still names its trace', async () => {
    const lines: string[] = [];
    const warnLog = createLogger('trace-test', 'warn', { write: (line: string) => lines.push(line) });
    const tracer = await startTracing({ otlpEndpoint: `http://127.0.0.1:${await freeLoopbackPort()}/v1/traces`, serviceName: 'nowhere' }, warnLog);
    const span = tracer.start('edge request', undefined);
    assert.match(span.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    span.end();
    await tracer.close();
    assert.equal(lines.length, 1, lines.join(''));
    assert.match(lines[0]!, /"msg":"trace spans not exported at shutdown"/);
    assert.match(lines[0]!, /ECONNREFUSED/);
  });
});
