import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { GRPCInferenceService } from '../../shared/gen/inference/grpc_service_pb.js';
import { Health } from '../../shared/gen/grpc/health/v1/health_pb.js';
import { addService, callUnary, clientConstructor, openBidiStream, serviceDefinition } from '../../shared/grpc-service.js';
import { decodeInferInputs, decodeInferOutputs, encodeInferInputs, encodeInferOutputs } from '../../shared/tensor-codec.js';
import { packageRoot } from '../../shared/paths.js';
import { float32 } from '../../shared/tensor.js';

function filesUnder(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).filter((f) => statSync(path.join(dir, f)).isFile()).sort();
}

test('committed shared/gen is exactly what buf generates from proto/', () => {
  const out = mkdtempSync(path.join(tmpdir(), 'splitinfer-gen-'));
  try {
    const buf = spawnSync(path.join(packageRoot, 'node_modules/.bin/buf'), ['generate', 'proto', '--output', out], {
      cwd: packageRoot,
      encoding: 'utf8',
    });
    assert.equal(buf.status, 0, `buf generate failed: ${buf.stderr}${buf.error ?? ''}`);
    const fresh = path.join(out, 'shared/gen');
    const committed = path.join(packageRoot, 'shared/gen');
    const stale = 'shared/gen is stale — run `npm run gen` and commit the result';
    assert.deepEqual(filesUnder(committed), filesUnder(fresh), `${stale} (the file lists differ)`);
    for (const file of filesUnder(fresh)) {
      const same = readFileSync(path.join(fresh, file)).equals(readFileSync(path.join(committed, file)));
      assert.ok(same, `${stale} (shared/gen/${file} differs)`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('the derived definition has every inference RPC with its streaming flags', () => {
  const definition = serviceDefinition(GRPCInferenceService);
  const flags = Object.fromEntries(
    Object.entries(definition).map(([name, m]) => [name, [m.path, m.requestStream, m.responseStream, m.originalName]]),
  );
  const unary = (name: string, localName: string) => [`/inference.GRPCInferenceService/${name}`, false, false, localName];
  assert.deepEqual(flags, {
    ServerLive: unary('ServerLive', 'serverLive'),
    ServerReady: unary('ServerReady', 'serverReady'),
    ModelReady: unary('ModelReady', 'modelReady'),
    ServerMetadata: unary('ServerMetadata', 'serverMetadata'),
    ModelMetadata: unary('ModelMetadata', 'modelMetadata'),
    ModelInfer: unary('ModelInfer', 'modelInfer'),
    ModelStreamInfer: ['/inference.GRPCInferenceService/ModelStreamInfer', true, true, 'modelStreamInfer'],
    RepositoryIndex: unary('RepositoryIndex', 'repositoryIndex'),
    RepositoryModelLoad: unary('RepositoryModelLoad', 'repositoryModelLoad'),
    RepositoryModelUnload: unary('RepositoryModelUnload', 'repositoryModelUnload'),
  });
  assert.equal(serviceDefinition(GRPCInferenceService), definition, 'built once per service');

  const health = serviceDefinition(Health);
  assert.equal(health.Check!.path, '/grpc.health.v1.Health/Check');
  assert.deepEqual([health.Watch!.requestStream, health.Watch!.responseStream], [false, true]);
});

describe('loopback over the derived definition', () => {
  const server = new grpc.Server();
  let address = '';

  before(async () => {
    addService(server, GRPCInferenceService, {
      serverLive: (_call, callback) => callback(null, { live: true }),
      modelReady: (call, callback) => callback({ code: grpc.status.NOT_FOUND, details: `no model '${call.request.name}'` }),
      modelStreamInfer: (call) => {
        call.on('data', (request) => {
          const { x } = decodeInferInputs(request);
          const doubled = Float32Array.from(x!.data as Float32Array, (v) => v * 2);
          call.write({
            inferResponse: {
              modelName: request.modelName,
              id: request.id,
              parameters: {
                tenant: request.parameters['tenant']!,
                compute_us: { parameterChoice: { case: 'int64Param', value: 42n } },
              },
              ...encodeInferOutputs({ y: float32(x!.dims, doubled) }),
            },
          });
        });
        call.on('end', () => call.end());
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    address = `127.0.0.1:${port}`;
  });

  after(() => server.forceShutdown());

  test('a client built by @grpc/proto-loader from the committed proto talks to it', async () => {
    const definition = protoLoader.loadSync(path.join(packageRoot, 'proto/inference/grpc_service.proto'), {
      keepCase: true,
      longs: String,
      defaults: true,
      oneofs: true,
    });
    const inference = grpc.loadPackageDefinition(definition).inference as grpc.GrpcObject;
    const Client = inference.GRPCInferenceService as grpc.ServiceClientConstructor;
    const client = new Client(address, grpc.credentials.createInsecure());
    try {
      const live = await new Promise((resolve, reject) =>
        client.ServerLive!({}, (err: Error | null, response: unknown) => (err ? reject(err) : resolve(response))),
      );
      assert.deepEqual(live, { live: true });

      const stream = client.ModelStreamInfer!() as grpc.ClientDuplexStream<object, Record<string, any>>;
      const response = new Promise<Record<string, any>>((resolve, reject) => {
        stream.once('data', resolve);
        stream.once('error', reject);
      });
      // Encoded by hand from the spec, not by our codec.
      const raw = Buffer.alloc(8);
      raw.writeFloatLE(1.5, 0);
      raw.writeFloatLE(-2, 4);
      stream.write({
        model_name: 'echo',
        id: 'r1',
        parameters: { tenant: { string_param: 'acme' } },
        inputs: [{ name: 'x', datatype: 'FP32', shape: [2] }],
        raw_input_contents: [raw],
      });
      const { error_message, infer_response } = await response;
      stream.end();
      assert.equal(error_message, '');
      assert.equal(infer_response.model_name, 'echo');
      assert.equal(infer_response.id, 'r1');
      assert.equal(infer_response.parameters.tenant.string_param, 'acme');
      assert.equal(infer_response.parameters.compute_us.parameter_choice, 'int64_param');
      assert.equal(infer_response.parameters.compute_us.int64_param, '42');
      assert.deepEqual(infer_response.outputs[0].shape, ['2']);
      assert.equal(infer_response.outputs[0].datatype, 'FP32');
      const out: Buffer = infer_response.raw_output_contents[0];
      assert.deepEqual([out.readFloatLE(0), out.readFloatLE(4)], [3, -4]);
    } finally {
      client.close();
    }
  });

  test('our client helpers call unary and bidi RPCs and surface status codes', async () => {
    const Client = clientConstructor(GRPCInferenceService);
    const client = new Client(address, grpc.credentials.createInsecure());
    try {
      assert.equal((await callUnary(client, GRPCInferenceService.method.serverLive, {})).live, true);
      await assert.rejects(callUnary(client, GRPCInferenceService.method.modelReady, { name: 'nope' }), {
        code: grpc.status.NOT_FOUND,
        details: "no model 'nope'",
      });
      await assert.rejects(callUnary(client, GRPCInferenceService.method.serverReady, {}), { code: grpc.status.UNIMPLEMENTED });

      const stream = openBidiStream(client, GRPCInferenceService.method.modelStreamInfer);
      stream.write({
        modelName: 'echo',
        parameters: { tenant: { parameterChoice: { case: 'stringParam', value: 'acme' } } },
        ...encodeInferInputs({ x: float32([1, 2], Float32Array.of(0.25, 8)) }),
      });
      stream.end();
      const responses = await stream.toArray();
      assert.equal(responses.length, 1);
      const { y } = decodeInferOutputs(responses[0]!.inferResponse!);
      assert.deepEqual(y, float32([1, 2], Float32Array.of(0.5, 16)));
    } finally {
      client.close();
    }
  });
});
