/**
 * `splitinfer model inspect` and the toolchain's model reader: what a model
 * holds (opsets, signature, op counts including subgraphs, parameters and
 * bytes by type, initializers vs Constant nodes), and clear errors for files
 * that are not ONNX models.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { buildModel, encodeModel, node, tensor, valueInfo } from '../../models/onnx-graph.js';
import { summarizeModel } from '../../models/toolchain/inspect.js';
import { constantsToInitializers, ModelToolError, parseModel, readModel, tensorValues } from '../../models/toolchain/onnx-model.js';
import { packageRoot } from '../../shared/paths.js';

const run = promisify(execFile);
const cli = path.join(packageRoot, 'dist', 'shared', 'cli.js');
const dir = mkdtempSync(path.join(os.tmpdir(), 'splitinfer-inspect-'));

/** x[batch, 4] · W[4, 3] + b, then Relu; the bias is a Constant node, as Paddle exports keep weights. */
function smallModel() {
  const weights = tensor('W', [4, 3], Float32Array.from({ length: 12 }, (_, i) => i / 10));
  const bias = tensor('b_value', [3], new Float32Array([1, 2, 3]));
  return buildModel({
    name: 'small',
    nodes: [node('Constant', [], ['b'], { value: { tensor: bias } }), node('MatMul', ['x', 'W'], ['xw']), node('Add', ['xw', 'b'], ['z']), node('Relu', ['z'], ['y'])],
    initializers: [weights],
    inputs: [valueInfo('x', 'float32', ['batch', 4])],
    outputs: [valueInfo('y', 'float32', ['batch', 3])],
  });
}

describe('model inspect', () => {
  test('a model reports its signature, op counts, parameters and bytes by type, and where its weights are', () => {
    const summary = summarizeModel(smallModel());
    assert.deepEqual(summary.opsets, { 'ai.onnx': 17 });
    assert.deepEqual(summary.inputs, [{ name: 'x', type: 'float', shape: ['batch', 4] }]);
    assert.deepEqual(summary.outputs, [{ name: 'y', type: 'float', shape: ['batch', 3] }]);
    assert.deepEqual(summary.ops, { Add: 1, Constant: 1, MatMul: 1, Relu: 1 });
    assert.equal(summary.parameters, 15);
    assert.deepEqual(summary.weightBytesByType, { float: 60 });
    assert.deepEqual(summary.weightsIn, { initializers: 1, constantNodes: 1 });
  });

  test('Constant-node weights move into initializers under their output names, values intact', () => {
    const model = smallModel();
    constantsToInitializers(model);
    assert.deepEqual(model.graph!.node.map((n) => n.opType), ['MatMul', 'Add', 'Relu']);
    const bias = model.graph!.initializer.find((t) => t.name === 'b')!;
    assert.deepEqual([...tensorValues(bias)], [1, 2, 3]);
    assert.deepEqual(summarizeModel(model).weightsIn, { initializers: 2, constantNodes: 0 });
  });

  test('the shipped models are read, Silero VAD with its If subgraphs counted', () => {
    const vad = summarizeModel(readModel(path.join(packageRoot, 'node_modules', '@jjhbw', 'silero-vad', 'weights', 'silero_vad_16k_op15.onnx')));
    assert.equal(vad.ops.LSTM, 2, 'the LSTMs sit inside If branches');
    assert.deepEqual(vad.inputs.map((i) => i.name), ['input', 'state', 'sr']);
    const text = summarizeModel(readModel(path.join(packageRoot, 'models', 'text-intent', 'text-intent.fp32.onnx')));
    assert.deepEqual(text.ops, { Add: 2, MatMul: 2, Relu: 1, Softmax: 1 });
  });

  test('a file that is not an ONNX model is refused saying what it looks like', () => {
    assert.throws(() => parseModel(new TextEncoder().encode('{"name": "splitinfer"}'), 'package.json'), (err: Error) => {
      assert.ok(err instanceof ModelToolError);
      assert.match(err.message, /^package\.json: not an ONNX model \(.*first bytes 7b 22 6e 61 6d 65 22 3a\) — pass a \.onnx file$/);
      return true;
    });
    assert.throws(() => readModel(path.join(dir, 'missing.onnx')), /missing\.onnx: cannot read it \(ENOENT\)/);
  });

  test('the CLI prints the summary, or JSON, and exits 1 with the reason for a bad file', async () => {
    const file = path.join(dir, 'small.onnx');
    writeFileSync(file, encodeModel(smallModel()));
    const { stdout } = await run(process.execPath, [cli, 'model', 'inspect', file]);
    assert.match(stdout, /inputs: {2}x: float\[batch, 4\]/);
    assert.match(stdout, /nodes: {3}4 \(Add 1, Constant 1, MatMul 1, Relu 1\)/);
    const json = JSON.parse((await run(process.execPath, [cli, 'model', 'inspect', '--json', file])).stdout) as { parameters: number };
    assert.equal(json.parameters, 15);
    const notOnnx = path.join(dir, 'notes.txt');
    writeFileSync(notOnnx, 'hello');
    await assert.rejects(run(process.execPath, [cli, 'model', 'inspect', notOnnx]), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr, /notes\.txt: not an ONNX model/);
      return true;
    });
  });
});
