/**
 * A failed ORT run carries the code it deserves: what onnxruntime rejects in
 * the feeds is INVALID_ARGUMENT, memory running out is RESOURCE_EXHAUSTED,
 * anything else INTERNAL. Real sessions on real models provoke the failures.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildModel, encodeModel, node, valueInfo } from '../../models/onnx-graph.js';
import { InferError } from '../../shared/errors.js';
import { createLogger } from '../../shared/log.js';
import { runErrorCode } from '../../shared/ort/run-error.js';
import { openSession, type OrtSession } from '../../shared/ort/session.js';
import { packageRoot } from '../../shared/paths.js';
import { bytesTensor, float32, type Tensor } from '../../shared/tensor.js';

const log = createLogger('test', 'silent');

async function runFailure(session: OrtSession, feeds: Record<string, Tensor>): Promise<InferError> {
  const err = await session.run(feeds).then(
    () => assert.fail('expected the run to fail'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof InferError, `expected an InferError, got ${String(err)}`);
  return err;
}

describe('ORT run failures', () => {
  let dir: string;
  let textIntent: OrtSession;
  let fill: OrtSession;

  before(async () => {
    textIntent = await openSession('text-intent', path.join(packageRoot, 'models', 'text-intent', 'text-intent.fp32.onnx'), { providers: ['cpu'], intraOpThreads: 1 }, log);
    // y = a float32 tensor of zeros of the shape given in `shape`: as much memory as the caller asks for.
    dir = mkdtempSync(path.join(tmpdir(), 'splitinfer-ort-errors-'));
    const fillFile = path.join(dir, 'fill.onnx');
    const model = buildModel({ name: 'fill', nodes: [node('ConstantOfShape', ['shape'], ['y'])], initializers: [], inputs: [valueInfo('shape', 'int64', [2])], outputs: [valueInfo('y', 'float32')] });
    writeFileSync(fillFile, encodeModel(model));
    fill = await openSession('fill', fillFile, { providers: ['cpu'], intraOpThreads: 1 }, log);
  });

  after(async () => {
    await Promise.all([textIntent?.close(), fill?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  const shape = (...dims: bigint[]): Record<string, Tensor> => ({ shape: { type: 'int64', dims: [2], data: BigInt64Array.from(dims) } });

  test('feeds onnxruntime rejects against the graph inputs are INVALID_ARGUMENT, with its explanation', async () => {
    const wrongDims = await runFailure(textIntent, { features: float32([1, 3], new Float32Array(3)) });
    assert.equal(wrongDims.code, 'INVALID_ARGUMENT');
    assert.match(wrongDims.message, /^model text-intent: Got invalid dimensions for input: features for the following indices\n index: 1 Got: 3 Expected: 16384/);
    const wrongRank = await runFailure(textIntent, { features: float32([1, 1, 3], new Float32Array(3)) });
    assert.equal(wrongRank.code, 'INVALID_ARGUMENT');
    assert.match(wrongRank.message, /Invalid rank for input: features Got: 3 Expected: 2/);
    const wrongType = await runFailure(textIntent, { features: { type: 'int32', dims: [1, 16384], data: new Int32Array(16384) } });
    assert.equal(wrongType.code, 'INVALID_ARGUMENT');
    assert.match(wrongType.message, /Unexpected input data type\. Actual: \(tensor\(int32\)\) , expected: \(tensor\(float\)\)/);
    const missing = await runFailure(textIntent, {});
    assert.equal(missing.code, 'INVALID_ARGUMENT');
    assert.match(missing.message, /input 'features' is missing in 'feeds'/);
    const bytes = await runFailure(textIntent, { features: bytesTensor([new Uint8Array([1])]) });
    assert.equal(bytes.code, 'INVALID_ARGUMENT');
    assert.match(bytes.message, /string\/bytes tensors are not accepted/);
  });

  test('memory running out is RESOURCE_EXHAUSTED, saying what to do', async () => {
    // 4e14 bytes: more than any 64-bit process can map, so the allocation fails at once and touches nothing.
    const err = await runFailure(fill, shape(10_000_000n, 10_000_000n));
    assert.equal(err.code, 'RESOURCE_EXHAUSTED');
    assert.match(err.message, /^model fill: .*Failed to allocate memory for requested buffer of size 400000000000000 — the runtime ran out of memory/s);
    const ok = await fill.run(shape(2n, 3n));
    assert.deepEqual(ok.outputs.y!.dims, [2, 3], 'the session still serves after the failure');
  });

  test('a failure inside the graph is INTERNAL', async () => {
    const err = await runFailure(fill, shape(-1n, 2n));
    assert.equal(err.code, 'INTERNAL');
    assert.match(err.message, /Non-zero status code returned while running ConstantOfShape node/);
  });

  test('messages of other runtimes and providers are classified the same way', () => {
    const cases: [string, string][] = [
      ['std::bad_alloc', 'RESOURCE_EXHAUSTED'],
      ["Non-zero status code returned while running Conv node. Name:'Conv_0' Status Message: CUDA failure 2: out of memory ; GPU=0 ; hostname=gpu-1 ; expr=cudaMalloc((void**)&p, size);", 'RESOURCE_EXHAUSTED'],
      ["Non-zero status code returned while running FusedConv node. Name:'c' Status Message: CUDNN failure 4: CUDNN_STATUS_ALLOC_FAILED", 'RESOURCE_EXHAUSTED'],
      ['[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Invalid Feed Input Name:x', 'INVALID_ARGUMENT'],
      ["Non-zero status code returned while running ConstantOfShape node. Name:'ConstantOfShape_y' Status Message: /onnxruntime_src/onnxruntime/core/common/safeint.h:17 static void SafeIntExceptionHandler<onnxruntime::OnnxRuntimeException>::SafeIntOnOverflow() Integer overflow", 'INTERNAL'],
      ['runtime worker crashed', 'INTERNAL'],
    ];
    for (const [message, code] of cases) assert.equal(runErrorCode(message), code, message);
  });
});
