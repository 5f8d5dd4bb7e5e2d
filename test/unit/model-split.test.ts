/**
 * `splitinfer model split`: a graph cut at a value becomes a head and a tail
 * that reproduce the whole model; values that are not cuts, unknown names
 * and graph inputs are refused with what crosses and where one could cut;
 * the real encoders split at their block boundaries.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import ort from 'onnxruntime-node';
import type { ModelProto } from 'onnx-buf';
import { buildModel, encodeModel, node, tensor, valueInfo } from '../../models/onnx-graph.js';
import { ModelToolError, parseModel, readModel } from '../../models/toolchain/onnx-model.js';
import { sampleFeeds, splitVerified } from '../../models/toolchain/split-command.js';
import { cutCandidates } from '../../models/toolchain/split.js';
import { packageRoot } from '../../shared/paths.js';

const run = promisify(execFile);
const cli = path.join(packageRoot, 'dist', 'shared', 'cli.js');
const dir = mkdtempSync(path.join(os.tmpdir(), 'splitinfer-split-'));

/**
 * x[batch, 4] → Relu → a; a·k → b1 and a + c → b2 (two branches); b1 + b2
 * → s → Sigmoid → y. k comes from a Constant node read on both sides of a
 * cut at `a`. The cuts are a, s (and y's producers' inputs only).
 */
function branchy(): ModelProto {
  return buildModel({
    name: 'branchy',
    nodes: [
      node('Constant', [], ['k'], { value: { tensor: tensor('k', [4], Float32Array.from([0.5, -1, 2, 0.25])) } }),
      node('Relu', ['x'], ['a']),
      node('Mul', ['a', 'k'], ['b1']),
      node('Add', ['a', 'c'], ['b2']),
      node('Add', ['b1', 'b2'], ['s']),
      node('Mul', ['s', 'k'], ['t']),
      node('Sigmoid', ['t'], ['y']),
    ],
    initializers: [tensor('c', [4], Float32Array.from([1, 2, 3, 4]))],
    inputs: [valueInfo('x', 'float32', ['batch', 4])],
    outputs: [valueInfo('y', 'float32', ['batch', 4])],
  });
}

async function runBytes(bytes: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<ort.InferenceSession.OnnxValueMapType> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

const inputX = (batch: number) => new ort.Tensor('float32', Float32Array.from({ length: batch * 4 }, (_, i) => (i % 7) - 3), [batch, 4]);

describe('layer split', () => {
  test('the values that cut a graph are listed in node order; branches in flight are not cuts', () => {
    assert.deepEqual(cutCandidates(branchy()), ['a', 's', 't']);
  });

  test('head and tail reproduce the whole model, batch free, and each keeps the constants it reads', async () => {
    const model = branchy();
    const report = await splitVerified(model, 'a');
    assert.equal(report.maxAbsDiff, 0);
    assert.deepEqual(report.cut, { name: 'a', type: 'float32', dims: [1, 4] });
    const head = parseModel(report.head, 'head');
    const tail = parseModel(report.tail, 'tail');
    assert.deepEqual(head.graph!.node.map((n) => n.opType), ['Relu']);
    assert.deepEqual(tail.graph!.node.map((n) => n.opType), ['Mul', 'Add', 'Add', 'Mul', 'Sigmoid']);
    assert.deepEqual(head.graph!.initializer.map((t) => t.name), [], 'the head reads no weight');
    assert.deepEqual(tail.graph!.initializer.map((t) => t.name).sort(), ['c', 'k'], 'the Constant node became a weight of the tail');
    assert.deepEqual(tail.graph!.input.map((v) => v.name), ['a']);

    // A batch of 3 through both parts: the cut's batch dimension stayed free.
    const whole = (await runBytes(encodeModel(model), { x: inputX(3) })).y!;
    const activation = (await runBytes(report.head, { x: inputX(3) })).a!;
    const split = (await runBytes(report.tail, { a: activation })).y!;
    assert.deepEqual(split.dims, [3, 4]);
    assert.deepEqual([...(split.data as Float32Array)], [...(whole.data as Float32Array)]);
  });

  test('a value that is not a cut names what would cross and where the graph can be cut', async () => {
    await assert.rejects(splitVerified(branchy(), 'b1'), (err: Error) => {
      assert.ok(err instanceof ModelToolError);
      assert.match(err.message, /--at b1: not a cut — besides it, a \(read by Add_b2\) would have to cross/);
      assert.match(err.message, /values that cut this graph \(3\): a, s, t/);
      return true;
    });
    await assert.rejects(splitVerified(branchy(), 'y'), /not a cut — besides it, y \(a graph output\)/);
  });

  test('an unknown value, a graph input and a weight are refused with the cuts to choose from', async () => {
    await assert.rejects(splitVerified(branchy(), 'nope'), /--at nope: no node of the graph computes a value of that name — values that cut this graph \(3\): a, s, t/);
    await assert.rejects(splitVerified(branchy(), 'x'), /--at x: that is an input of the graph, so the head would be empty/);
    await assert.rejects(splitVerified(branchy(), 'c'), /--at c: that is a weight, not a value the graph computes/);
  });

  test('sample inputs follow the declared types, with free dimensions at 1', () => {
    const feeds = sampleFeeds(branchy());
    assert.deepEqual(feeds.x!.dims, [1, 4]);
    assert.equal(feeds.x!.type, 'float32');
  });

  test('the CLI writes both parts next to the model, or nothing when the value is not a cut', async () => {
    const file = path.join(dir, 'branchy.onnx');
    writeFileSync(file, encodeModel(branchy()));
    const { stdout } = await run(process.execPath, [cli, 'model', 'split', file, '--at', 's']);
    assert.match(stdout, /cut s: float32 \[1, 4\], 16 bytes per sample/);
    assert.match(stdout, /max abs difference 0 \(bit-exact\)/);
    assert.ok(existsSync(path.join(dir, 'branchy.head.onnx')) && existsSync(path.join(dir, 'branchy.tail.onnx')));
    assert.deepEqual(readModel(path.join(dir, 'branchy.tail.onnx')).graph!.node.map((n) => n.opType), ['Mul', 'Sigmoid']);

    const head = path.join(dir, 'h.onnx');
    const failed = await run(process.execPath, [cli, 'model', 'split', file, '--at', 'b2', '--head', head, '--tail', path.join(dir, 't.onnx')]).catch((err: { code: number; stderr: string }) => err);
    assert.notEqual((failed as { code: number }).code, 0);
    assert.match((failed as { stderr: string }).stderr, /--at b2: not a cut/);
    assert.equal(existsSync(head), false, 'nothing is written');

    const listed = await run(process.execPath, [cli, 'model', 'split', file, '--list']);
    assert.equal(listed.stdout, 'a\ns\nt\n');
    await assert.rejects(run(process.execPath, [cli, 'model', 'split', file]), /--at VALUE is required/);
  });

  // A block's output splits; a value inside a block (a residual or a branch still in flight) does not.
  const encoders = [
    { name: 'mobilenet-v2', boundary: 'block_5_add/sum', dims: [1, 32, 28, 28], inside: 'block_5_project_BN/batch_norm', crossing: 'block_4_add/sum' },
    { name: 'inception-v3', boundary: 'mixed5/concat', dims: [1, 768, 17, 17], inside: 'mixed9_0/concat', crossing: 'mixed8/concat' },
  ];
  for (const { name, boundary, dims, inside, crossing } of encoders) {
    const file = path.join(packageRoot, 'models', 'image-encoder', `${name}.fp32.onnx`);
    test(`${name} splits at a block boundary and reproduces its outputs; inside a block it does not`, { skip: !existsSync(file) && `${file} is not built (npm run build:image-encoder)` }, async () => {
      const model = parseModel(readFileSync(file), file);
      const report = await splitVerified(model, boundary);
      assert.ok(report.maxAbsDiff <= 1e-5, `max abs diff ${report.maxAbsDiff}`);
      assert.deepEqual(report.cut.dims, dims);
      assert.deepEqual(parseModel(report.tail, 'tail').graph!.output.map((v) => v.name), model.graph!.output.map((v) => v.name));
      await assert.rejects(splitVerified(model, inside), (err: Error) => err.message.includes(`${inside}: not a cut — besides it, ${crossing}`));
    });
  }
});
