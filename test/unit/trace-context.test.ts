/**
 * W3C Trace Context: which `traceparent` headers a tier accepts, what it
 * sends on, and how an MQTT 5 request names one (edge/ingress/request-trace.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { requestTraceparent, traceUserProperties } from '../../edge/ingress/request-trace.js';
import { formatTraceparent, newTraceContext, parseTraceparent, traceContextOf } from '../../shared/trace-context.js';
import { passThroughTracer, startTracing } from '../../shared/tracing.js';
import { createLogger } from '../../shared/log.js';

const header = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

test('a valid traceparent is read and written back unchanged', () => {
  assert.deepEqual(parseTraceparent(header), { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', flags: 1 });
  assert.equal(formatTraceparent(parseTraceparent(header)!), header);
  assert.equal(formatTraceparent(parseTraceparent(header.replace(/-01$/, '-00'))!), header.replace(/-01$/, '-00'));
});

test('a later version with more fields is read as version 00 (W3C §4.3)', () => {
  assert.equal(formatTraceparent(parseTraceparent(`01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra`)!), header);
});

test('invalid headers are refused', () => {
  for (const bad of [
    undefined,
    42,
    '',
    'garbage',
    `${header}-extra`, // version 00 has exactly four fields
    header.replace(/^00/, 'ff'), // version ff is invalid
    '00-00000000000000000000000000000000-b7ad6b7169203331-01', // all-zero trace id
    '00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01', // all-zero span id
    header.toUpperCase(),
    header.slice(0, -1),
    `${header}${'x'.repeat(600)}`,
  ]) {
    assert.equal(parseTraceparent(bad), undefined, String(bad));
  }
});

test('a new trace has random, valid ids and is marked sampled', () => {
  const a = newTraceContext();
  const b = newTraceContext();
  assert.notEqual(a.traceId, b.traceId);
  assert.deepEqual(parseTraceparent(formatTraceparent(a)), a);
  assert.equal(a.flags, 1);
  assert.equal(traceContextOf('garbage').traceId.length, 32);
  assert.equal(traceContextOf(header).traceId, '0af7651916cd43dd8448eb211c80319c');
});

test("an MQTT 5 request's user property names its trace; none, or an invalid one, starts a new trace", () => {
  assert.equal(requestTraceparent({ properties: { userProperties: { traceparent: header } } }), header);
  assert.equal(requestTraceparent({ properties: { userProperties: { traceparent: [header, 'second'] } } }), header);
  for (const packet of [{}, { properties: {} }, { properties: { userProperties: { traceparent: 'garbage' } } }]) {
    const started = requestTraceparent(packet);
    assert.ok(parseTraceparent(started), started);
    assert.notEqual(parseTraceparent(started)!.traceId, '0af7651916cd43dd8448eb211c80319c');
  }
  assert.deepEqual(traceUserProperties(header), { userProperties: { traceparent: header } });
  assert.equal(traceUserProperties(undefined), undefined);
});

test('without an OTLP endpoint, tracing loads nothing and passes the context through', async () => {
  const tracer = await startTracing({ otlpEndpoint: '', serviceName: 'test' }, createLogger('test', 'silent'));
  assert.equal(tracer, passThroughTracer);
  const span = tracer.start('edge request', parseTraceparent(header));
  assert.equal(span.traceparent, header);
  span.end();
  assert.ok(parseTraceparent(tracer.start('edge request', undefined).traceparent));
  await tracer.close();
});
