/**
 * Triton's model repository RPCs, called from an independent client built
 * from the .proto with @grpc/proto-loader (as any Triton client would), and
 * the reloads behind them: 20 reloads under continuous load fail no
 * request, a failed load keeps the old version and says why, the poll mode
 * reloads a model whose files changed, and the RPCs are admin-only.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { loadCatalog, resolveSource } from '../../shared/catalog.js';
import { sha256Hex } from '../../shared/secrets.js';
import { packageRoot } from '../../shared/paths.js';
import type { CloudServer } from '../../cloud/server.js';
import { startTestCloud } from '../helpers/cloud.js';
import { metricValue, scrapeMetrics, textIntentInCatalog, textIntentOptions } from '../helpers/inference.js';

interface TritonReply {
  [key: string]: unknown;
}
type Unary = (request: object, metadata: grpc.Metadata, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, reply: TritonReply) => void) => void;

/** A client of the proto as published (keepCase: Triton's field names), with nothing of ours but the .proto file. */
function tritonClient(address: string) {
  const definition = protoLoader.loadSync(path.join(packageRoot, 'proto', 'inference', 'grpc_service.proto'), { keepCase: true, longs: String, defaults: true, oneofs: true });
  const inference = (grpc.loadPackageDefinition(definition) as unknown as { inference: { GRPCInferenceService: grpc.ServiceClientConstructor } }).inference;
  const client = new inference.GRPCInferenceService(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & Record<string, Unary>;
  const call = (method: string, request: object, apiKey?: string) =>
    new Promise<TritonReply>((resolve, reject) => {
      const metadata = new grpc.Metadata();
      if (apiKey) metadata.set('authorization', `Bearer ${apiKey}`);
      client[method]!.call(client, request, metadata, { deadline: Date.now() + 30_000 }, (err, reply) => (err ? reject(err) : resolve(reply)));
    });
  const textRequest = (text: string) => {
    const bytes = Buffer.from(text, 'utf8');
    const element = Buffer.alloc(4 + bytes.length);
    element.writeUInt32LE(bytes.length, 0);
    bytes.copy(element, 4);
    return { model_name: 'text-intent', inputs: [{ name: 'input', datatype: 'BYTES', shape: [1] }], raw_input_contents: [element] };
  };
  return { client, call, textRequest };
}

async function failure(call: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await call;
  } catch (err) {
    return err as grpc.ServiceError;
  }
  return assert.fail('expected the call to fail');
}

/** A catalog holding text-intent (its fp32 file copied into `dir`, so a test can change it) and audio-vad as shipped. */
function writeCatalog(dir: string, fp32File = path.join(dir, 'text-intent.fp32.onnx')): string {
  const catalog = loadCatalog();
  const text = catalog.models.find((m) => m.id === 'text-intent')!;
  text.variants.fp32!.graphs['text-intent-mlp'] = { source: fp32File, sha256: createHash('sha256').update(readFileSync(fp32File)).digest('hex') };
  const file = path.join(dir, 'catalog.yaml');
  writeFileSync(file, JSON.stringify({ models: catalog.models.filter((m) => m.id === 'text-intent' || m.id === 'audio-vad') }));
  return file;
}

describe('model repository RPCs', textIntentOptions, () => {
  let server: CloudServer;
  let triton: ReturnType<typeof tritonClient>;
  let dir: string;
  let catalogFile: string;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'splitinfer-repository-'));
    if (textIntentInCatalog) copyFileSync(resolveSource('models/text-intent/text-intent.fp32.onnx'), path.join(dir, 'text-intent.fp32.onnx'));
    catalogFile = textIntentInCatalog ? writeCatalog(dir) : '';
    const cloud = await startTestCloud({ catalog: catalogFile, models: ['text-intent'], repository: { control: true }, drainTimeoutMs: 10_000 });
    server = cloud.server;
    triton = tritonClient(cloud.address);
  });

  after(async () => {
    triton?.client.close();
    await server?.drain(1_000);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('RepositoryIndex lists every catalog model: loaded versions READY, the rest UNAVAILABLE', async () => {
    const { models } = await triton.call('RepositoryIndex', {});
    // In catalog order (the shipped catalog lists audio-vad before text-intent).
    assert.deepEqual(models, [
      { name: 'audio-vad', version: '', state: 'UNAVAILABLE', reason: 'not loaded' },
      { name: 'text-intent', version: 'fp32', state: 'READY', reason: '' },
    ]);
    assert.deepEqual((await triton.call('RepositoryIndex', { ready: true })).models, [{ name: 'text-intent', version: 'fp32', state: 'READY', reason: '' }]);
  });

  test('RepositoryModelLoad loads a model that was not loaded; RepositoryModelUnload takes it away again', async () => {
    await triton.call('RepositoryModelLoad', { model_name: 'audio-vad' });
    assert.equal((await triton.call('ModelReady', { name: 'audio-vad' })).ready, true);
    assert.equal((await triton.call('ModelReady', { name: 'silero-vad' })).ready, true, 'its graph comes with it');
    await triton.call('RepositoryModelUnload', { model_name: 'audio-vad', parameters: { unload_dependents: { bool_param: true } } });
    const gone = await failure(triton.call('ModelReady', { name: 'audio-vad' }));
    assert.equal(grpc.status[gone.code], 'NOT_FOUND');
    assert.match(gone.details, /unknown model 'audio-vad' \(unloaded; RepositoryModelLoad loads it\)/);
    assert.equal(grpc.status[(await failure(triton.call('ModelReady', { name: 'silero-vad' }))).code], 'NOT_FOUND');
    const index = (await triton.call('RepositoryIndex', {})).models as TritonReply[];
    assert.deepEqual(index.find((m) => m.name === 'audio-vad'), { name: 'audio-vad', version: '', state: 'UNAVAILABLE', reason: 'unloaded' });
  });

  test('unknown models, repositories and parameters are refused with what to send instead', async () => {
    const unknown = await failure(triton.call('RepositoryModelLoad', { model_name: 'resnet50' }));
    assert.equal(grpc.status[unknown.code], 'NOT_FOUND');
    assert.match(unknown.details, /unknown model 'resnet50' \(catalog has: audio-vad, text-intent\)/);
    const repository = await failure(triton.call('RepositoryIndex', { repository_name: '/models' }));
    assert.equal(grpc.status[repository.code], 'NOT_FOUND');
    assert.match(repository.details, /leave repository_name empty/);
    const override = await failure(triton.call('RepositoryModelLoad', { model_name: 'text-intent', parameters: { config: { string_param: '{}' } } }));
    assert.equal(grpc.status[override.code], 'INVALID_ARGUMENT');
    assert.match(override.details, /parameter 'config' is not supported.*edit the catalog/);
    assert.equal(grpc.status[(await failure(triton.call('RepositoryModelUnload', { model_name: 'audio-vad' }))).code], 'NOT_FOUND', 'not loaded');
  });

  test('20 reloads under continuous load: every request is answered, every replaced version is closed', async () => {
    let stop = false;
    const outcomes = { answered: 0, failed: [] as string[] };
    const senders = Array.from({ length: 4 }, async (_, n) => {
      for (let i = 0; !stop; i++) {
        try {
          const reply = await triton.call('ModelInfer', { ...triton.textRequest(`my payment failed ${n}-${i}`), id: `${n}-${i}` });
          assert.equal(reply.id, `${n}-${i}`);
          outcomes.answered++;
        } catch (err) {
          outcomes.failed.push((err as Error).message);
        }
      }
    });
    const loadsBefore = metricValue(await scrapeMetrics(server.metricsPort), 'splitinfer_model_loads_total', { model: 'text-intent', outcome: 'success' });
    for (let reload = 0; reload < 20; reload++) {
      const answeredBefore = outcomes.answered;
      await triton.call('RepositoryModelLoad', { model_name: 'text-intent' });
      // Requests keep flowing between reloads, so each swap happens with requests in flight.
      while (outcomes.answered < answeredBefore + 4 && outcomes.failed.length === 0) await new Promise((r) => setTimeout(r, 2));
    }
    stop = true;
    await Promise.all(senders);
    assert.deepEqual(outcomes.failed, [], `${outcomes.failed.length} of ${outcomes.answered + outcomes.failed.length} requests failed`);
    assert.ok(outcomes.answered >= 80, `only ${outcomes.answered} requests answered`);
    const loads = metricValue(await scrapeMetrics(server.metricsPort), 'splitinfer_model_loads_total', { model: 'text-intent', outcome: 'success' });
    assert.equal(loads - loadsBefore, 20);
    const deadline = Date.now() + 10_000;
    while (server.repository.retiringCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(server.repository.retiringCount, 0, 'replaced versions still open');
  });

  test('a replaced version stays open while a request holds it, and closes after that request', async () => {
    const held = server.repository.route('text-intent', '', undefined);
    await triton.call('RepositoryModelLoad', { model_name: 'text-intent' });
    assert.notEqual(server.repository.resolve('text-intent'), held.served, 'new requests go to the new load');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(server.repository.retiringCount, 1, 'the old load waits for its request');
    const answered = await held.served.queue.run(() => held.served.loaded.run(new TextEncoder().encode('I forgot my password')));
    assert.equal(typeof answered.value.result.intent, 'string', 'the old load still answers the request that holds it');
    held.release();
    const deadline = Date.now() + 5_000;
    while (server.repository.retiringCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(server.repository.retiringCount, 0);
  });

  test('a failed reload keeps the loaded version serving and says why, in the RPC and the index', async () => {
    const modelFile = path.join(dir, 'text-intent.fp32.onnx');
    const original = readFileSync(modelFile);
    writeFileSync(modelFile, Buffer.concat([original, Buffer.from('tampered')]));
    try {
      const failed = await failure(triton.call('RepositoryModelLoad', { model_name: 'text-intent' }));
      assert.equal(grpc.status[failed.code], 'FAILED_PRECONDITION');
      assert.match(failed.details, /model 'text-intent': reload failed, the loaded versions keep serving: model file .* is corrupt or was replaced: sha256/);
      const reply = await triton.call('ModelInfer', { ...triton.textRequest('I forgot my password'), id: 'after-failed-load' });
      assert.equal(reply.model_version, 'fp32');
      const entry = ((await triton.call('RepositoryIndex', { ready: true })).models as TritonReply[]).find((m) => m.name === 'text-intent');
      assert.equal(entry?.state, 'READY');
      assert.match(String(entry?.reason), /serving the previous load; the last reload failed: .*corrupt or was replaced/);
    } finally {
      writeFileSync(modelFile, original);
    }
    await triton.call('RepositoryModelLoad', { model_name: 'text-intent' });
    assert.equal(((await triton.call('RepositoryIndex', { ready: true })).models as TritonReply[])[0]?.reason, '', 'a good load clears the reason');
  });
});

describe('poll mode', textIntentOptions, () => {
  test('a changed catalog entry reloads the model; a broken change is logged once and the old version keeps serving', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'splitinfer-poll-'));
    const fp32 = path.join(dir, 'text-intent.fp32.onnx');
    copyFileSync(resolveSource('models/text-intent/text-intent.fp32.onnx'), fp32);
    const catalogFile = writeCatalog(dir);
    const { server, address } = await startTestCloud({ catalog: catalogFile, models: ['text-intent'], repository: { pollIntervalS: 0.1 } });
    const triton = tritonClient(address);
    const loads = async (outcome: string) => metricValue(await scrapeMetrics(server.metricsPort), 'splitinfer_model_loads_total', { model: 'text-intent', outcome });
    const waitFor = async (what: string, check: () => Promise<boolean>) => {
      const deadline = Date.now() + 10_000;
      while (!(await check())) {
        assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    try {
      assert.equal(await loads('success'), 1);
      // A new model file under the same version, with the catalog updated to its sha256: reloaded.
      const pruned = path.join(dir, 'text-intent.v2.onnx');
      copyFileSync(resolveSource('models/text-intent/text-intent.int8-pruned.onnx'), pruned);
      writeCatalog(dir, pruned);
      await waitFor('the reload', async () => (await loads('success')) === 2);
      // The file changes without the catalog: the sha256 check fails, once, and the loaded version keeps answering.
      writeFileSync(pruned, 'not a model');
      await waitFor('the failed reload', async () => (await loads('failure')) === 1);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(await loads('failure'), 1, 'an unchanged broken file is not retried every interval');
      assert.equal((await triton.call('ModelInfer', { ...triton.textRequest('where are my grades'), id: 'still' })).id, 'still');
      const control = await failure(triton.call('RepositoryModelLoad', { model_name: 'text-intent' }));
      assert.equal(grpc.status[control.code], 'FAILED_PRECONDITION', 'control is off by default');
      assert.match(control.details, /repository control is off.*repository\.control: true/);
    } finally {
      triton.client.close();
      await server.drain(1_000);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('repository RPCs are admin operations', textIntentOptions, () => {
  let server: CloudServer | undefined;
  let triton: ReturnType<typeof tritonClient>;

  before(async () => {
    const sha256 = sha256Hex;
    const cloud = await startTestCloud({
      models: ['text-intent'],
      auth: { apiKeys: [{ tenant: 'ops', sha256: sha256('ops-key') }, { tenant: 'shop', sha256: sha256('shop-key') }] },
      repository: { control: true, adminTenants: ['ops'] },
    });
    server = cloud.server;
    triton = tritonClient(cloud.address);
  });

  after(async () => {
    triton?.client.close();
    await server?.drain(1_000);
  });

  test('an admin tenant may reload; another tenant is PERMISSION_DENIED', async () => {
    await triton.call('RepositoryModelLoad', { model_name: 'text-intent' }, 'ops-key');
    const denied = await failure(triton.call('RepositoryModelLoad', { model_name: 'text-intent' }, 'shop-key'));
    assert.equal(grpc.status[denied.code], 'PERMISSION_DENIED');
    assert.match(denied.details, /admin tenants .*tenant shop is not one/);
    assert.equal(grpc.status[(await failure(triton.call('RepositoryIndex', {}, 'shop-key'))).code], 'PERMISSION_DENIED');
  });

  test('control with auth on and no admin tenant, or with auth off beyond loopback, stops start-up', async () => {
    await assert.rejects(startTestCloud({ models: ['text-intent'], auth: { apiKeys: [{ tenant: 'ops', sha256: sha256Hex('k') }] }, repository: { control: true } }), /repository\.adminTenants is empty/);
    await assert.rejects(startTestCloud({ models: ['text-intent'], host: '0.0.0.0', insecure: true, repository: { control: true } }), /would let anyone who reaches the port load and unload models/);
  });
});
