/**
 * The edge↔cloud link over real TLS on loopback, with certificates openssl
 * makes for this run: the edge offloads an image over TLS and verifies the
 * cloud's certificate (a wrong CA opens the circuit with the reason), mutual
 * TLS refuses a client without a certificate and maps one with a
 * certificate to its tenant, and the cloud's API keys give UNAUTHENTICATED
 * and PERMISSION_DENIED where they must.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { loadEdgeConfig } from '../../edge/config.js';
import { OffloadClient } from '../../edge/offload/offload-client.js';
import type { CloudServer } from '../../cloud/server.js';
import { GRPCInferenceService } from '../../shared/gen/inference/grpc_service_pb.js';
import { Health } from '../../shared/gen/grpc/health/v1/health_pb.js';
import { callUnary, clientConstructor } from '../../shared/grpc-service.js';
import { InferenceClient, type ChannelSecurity } from '../../shared/inference-client.js';
import { InferError } from '../../shared/errors.js';
import { createLogger } from '../../shared/log.js';
import { startTestCloud } from '../helpers/cloud.js';
import { assertStatus, deadlineIn, expectedOcrLines, grpcFailure, readFixture } from '../helpers/inference.js';
import { makeTestPki, opensslMissing, type TestPki } from '../helpers/tls.js';

const log = createLogger('test-edge', process.env.SPLITINFER_LOG_LEVEL ?? 'silent');
const invoice = readFixture('ocr', 'invoice.png');
const acmeKey = 'acme-test-key-0123456789';

/** The cloud's log lines, to check what it recorded (and what it never wrote). */
function capturedLogger() {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger('test-cloud', 'info', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

function edgeConfig(address: string, cloud: Record<string, unknown>) {
  return loadEdgeConfig(undefined, { cloud: { address, ...cloud }, policy: { stallSilenceMs: 60_000 } });
}

const ocrText = (result: Record<string, unknown>) => (result.lines as { text: string }[]).map((l) => l.text);

describe('TLS and API keys between the edge and the cloud tier', { skip: opensslMissing }, () => {
  let pki: TestPki;
  let cloud: { server: CloudServer; address: string };
  let cloudLog: ReturnType<typeof capturedLogger>;
  let keyFile: string;

  before(async () => {
    pki = makeTestPki();
    keyFile = path.join(pki.dir, 'acme.key');
    writeFileSync(keyFile, `${acmeKey}\n`);
    cloudLog = capturedLogger();
    cloud = await startTestCloud(
      {
        models: ['image-ocr'],
        tls: { cert: pki.serverCert, key: pki.serverKey },
        auth: { required: true, apiKeys: [{ tenant: 'acme', keyFile }], tenants: { acme: { models: ['image-ocr'] } } },
      },
      cloudLog.logger,
    );
  });

  after(async () => {
    await cloud?.server.drain(0);
    pki?.remove();
  });

  const client = (security: ChannelSecurity) => new InferenceClient(cloud.address, {}, security);

  test('the edge offloads an image over TLS, verifying the cloud against its CA and sending its API key from a file', async (t) => {
    const offload = await OffloadClient.connect(edgeConfig(cloud.address, { tls: { ca: pki.ca }, apiKeyFile: keyFile }), log);
    t.after(() => offload.close());
    assert.equal(offload.health().state, 'closed');
    const answer = await offload.infer('image-ocr', invoice, { taskId: 'tls-1', budgetMs: 30_000, image: true });
    assert.deepEqual(ocrText(answer.result), expectedOcrLines['invoice.png']!.map((l) => l.text));
    assert.ok(!JSON.stringify(cloudLog.lines).includes(acmeKey), 'the API key never reaches the log');
  });

  test('a cloud certificate from another CA fails the handshake: the circuit opens and says why', async (t) => {
    const offload = await OffloadClient.connect(edgeConfig(cloud.address, { tls: { ca: pki.otherCa }, apiKeyFile: keyFile }), log, { probeTimeoutMs: 2_000 });
    t.after(() => offload.close());
    const health = offload.health();
    assert.notEqual(health.state, 'closed');
    assert.match(health.lastError ?? '', /UNAVAILABLE/);
    assert.match(health.lastError ?? '', /certificate/i);
    await assert.rejects(offload.infer('image-ocr', invoice, { taskId: 'tls-2', budgetMs: 5_000, image: true }), (err: InferError) => err.code === 'UNAVAILABLE');
  });

  test('a plaintext client cannot talk to the TLS port', async (t) => {
    const plain = client({});
    t.after(() => plain.close());
    const err = await grpcFailure(callUnary(plain.grpc, GRPCInferenceService.method.serverLive, {}, deadlineIn(3_000)));
    assert.equal(grpc.status[err.code], 'UNAVAILABLE');
  });

  test('without an API key, ModelInfer is UNAUTHENTICATED while ServerLive, ServerReady and health stay open', async (t) => {
    const anonymous = client({ tls: { ca: pki.ca } });
    t.after(() => anonymous.close());
    assert.equal((await callUnary(anonymous.grpc, GRPCInferenceService.method.serverLive, {}, deadlineIn(5_000))).live, true);
    assert.equal((await callUnary(anonymous.grpc, GRPCInferenceService.method.serverReady, {}, deadlineIn(5_000))).ready, true);
    const health = new (clientConstructor(Health))(cloud.address, grpc.credentials.createSsl(readFileSync(pki.ca)));
    t.after(() => health.close());
    assert.equal((await callUnary(health, Health.method.check, { service: '' }, deadlineIn(5_000))).status, 1);
    const err = await grpcFailure(anonymous.inferPipeline('image-ocr', invoice, { deadlineMs: 5_000 }));
    assertStatus(err, grpc.status.UNAUTHENTICATED, /no credentials: send authorization: Bearer <API key>/);
    const metadataErr = await grpcFailure(callUnary(anonymous.grpc, GRPCInferenceService.method.modelMetadata, { name: 'image-ocr' }, deadlineIn(5_000)));
    assertStatus(metadataErr, grpc.status.UNAUTHENTICATED, /no credentials/);
  });

  test('an unknown API key is UNAUTHENTICATED', async (t) => {
    const stranger = client({ tls: { ca: pki.ca }, apiKey: 'not-a-key' });
    t.after(() => stranger.close());
    assertStatus(await grpcFailure(stranger.inferPipeline('image-ocr', invoice, { deadlineMs: 5_000 })), grpc.status.UNAUTHENTICATED, /API key is not recognised/);
  });

  test("a tenant calling a model outside its allow-list is PERMISSION_DENIED; on the edge's stream too, without opening the circuit", async (t) => {
    const acme = client({ tls: { ca: pki.ca }, apiKey: acmeKey });
    t.after(() => acme.close());
    assertStatus(await grpcFailure(acme.inferPipeline('audio-vad', new Uint8Array(8), { deadlineMs: 5_000 })), grpc.status.PERMISSION_DENIED, /tenant acme may not use model 'audio-vad' \(allowed: image-ocr\)/);
    const offload = await OffloadClient.connect(edgeConfig(cloud.address, { tls: { ca: pki.ca }, apiKeyFile: keyFile }), log);
    t.after(() => offload.close());
    await assert.rejects(offload.infer('audio-vad', new Uint8Array(8), { taskId: 'denied', budgetMs: 5_000, image: false }), (err: InferError) => err.code === 'PERMISSION_DENIED');
    assert.equal(offload.health().state, 'closed');
  });

  test("the tenant comes from the API key: a request's tenant parameter cannot pick another", async (t) => {
    const acme = client({ tls: { ca: pki.ca }, apiKey: acmeKey });
    t.after(() => acme.close());
    await acme.inferPipeline('image-ocr', invoice, { id: 'claims-beta', tenant: 'beta', deadlineMs: 30_000 });
    const line = cloudLog.lines.find((l) => l.msg === 'infer' && l.id === 'claims-beta');
    assert.equal(line?.tenant, 'acme');
    assert.equal(line?.caller, 'api-key');
  });
});

describe('mutual TLS: the client certificate is the identity', { skip: opensslMissing }, () => {
  let pki: TestPki;
  let cloud: { server: CloudServer; address: string };

  before(async () => {
    pki = makeTestPki('cam-7');
    cloud = await startTestCloud({
      models: ['image-ocr'],
      tls: { cert: pki.serverCert, key: pki.serverKey, clientCa: pki.ca },
      auth: { required: true, mtlsTenants: { 'cam-7': 'acme' }, tenants: { acme: { models: ['image-ocr'] } } },
    });
  });

  after(async () => {
    await cloud?.server.drain(0);
    pki?.remove();
  });

  test('a client without a certificate is refused at the handshake', async (t) => {
    const anonymous = new InferenceClient(cloud.address, {}, { tls: { ca: pki.ca } });
    t.after(() => anonymous.close());
    const err = await grpcFailure(callUnary(anonymous.grpc, GRPCInferenceService.method.serverLive, {}, deadlineIn(3_000)));
    assert.equal(grpc.status[err.code], 'UNAVAILABLE');
  });

  test("the edge with the device's certificate offloads an image as the tenant its CN maps to", async (t) => {
    const offload = await OffloadClient.connect(edgeConfig(cloud.address, { tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey } }), log);
    t.after(() => offload.close());
    const answer = await offload.infer('image-ocr', invoice, { taskId: 'mtls-1', budgetMs: 30_000, image: true });
    assert.deepEqual(ocrText(answer.result), expectedOcrLines['invoice.png']!.map((l) => l.text));
    await assert.rejects(offload.infer('audio-vad', new Uint8Array(8), { taskId: 'mtls-2', budgetMs: 5_000, image: false }), /tenant acme may not use model 'audio-vad'/);
  });
});
