/**
 * Owns one onnxruntime-node session. onnxruntime-node's session.run is a
 * synchronous native call (it only defers it with setImmediate), so running it
 * here keeps the caller's event loop free. Runs are served one at a time, in
 * arrival order: the worker's message queue is the session's queue.
 */
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import type { Tensor, TensorMeta, TensorType } from '../tensor.js';
import type { FromWorker, LoadRequest, ToWorker } from './protocol.js';
import { runErrorCode } from './run-error.js';
import { carriedFeeds } from './sequence.js';

const port = parentPort!;
const request = workerData as LoadRequest;

function send(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

function metaOf(meta: readonly ort.InferenceSession.ValueMetadata[]): TensorMeta[] {
  return meta.map((m) => ({
    name: m.name,
    type: (m.isTensor ? m.type : 'bytes') as TensorType,
    shape: m.isTensor ? m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)) : [],
  }));
}

function toOrt(t: Tensor): ort.Tensor {
  if (t.type === 'bytes') throw new Error('string/bytes tensors are not accepted by this runtime');
  return new ort.Tensor(t.type, t.data as ort.Tensor['data'] & ArrayLike<number>, t.dims);
}

function fromOrt(t: ort.Tensor): Tensor {
  return { type: t.type as TensorType, dims: [...t.dims], data: t.data as Tensor['data'] };
}

/** A feed that cannot even be built as a tensor (bytes, data length against dims): the caller's fault. */
class FeedError extends Error {}

async function runOnce(session: ort.InferenceSession, feeds: Record<string, Tensor>): Promise<{ outputs: Record<string, Tensor>; computeUs: number; transfer: ArrayBuffer[] }> {
  const ortFeeds: Record<string, ort.Tensor> = {};
  try {
    for (const [name, tensor] of Object.entries(feeds)) ortFeeds[name] = toOrt(tensor);
  } catch (err) {
    throw new FeedError(err instanceof Error ? err.message : String(err));
  }
  const started = process.hrtime.bigint();
  const results = await session.run(ortFeeds);
  const computeUs = Number((process.hrtime.bigint() - started) / 1000n);
  const outputs: Record<string, Tensor> = {};
  const transfer: ArrayBuffer[] = [];
  for (const [name, value] of Object.entries(results)) {
    const tensor = fromOrt(value);
    outputs[name] = tensor;
    if (ArrayBuffer.isView(tensor.data)) transfer.push(tensor.data.buffer as ArrayBuffer);
  }
  return { outputs, computeUs, transfer };
}

async function load(): Promise<ort.InferenceSession> {
  const fallbacks: { provider: string; reason: string }[] = [];
  for (const provider of request.providers) {
    try {
      const session = await ort.InferenceSession.create(request.modelPath, {
        executionProviders: [provider],
        intraOpNumThreads: request.intraOpThreads,
        interOpNumThreads: request.interOpThreads,
        graphOptimizationLevel: 'all',
      });
      send({
        op: 'loaded',
        provider,
        fallbacks,
        inputs: metaOf(session.inputMetadata),
        outputs: metaOf(session.outputMetadata),
      });
      return session;
    } catch (err) {
      fallbacks.push({ provider, reason: err instanceof Error ? err.message : String(err) });
    }
  }
  throw new Error(fallbacks.map((f) => `${f.provider}: ${f.reason}`).join('; '));
}

load().then(
  (session) => {
    port.on('message', async (message: ToWorker) => {
      if (message.op === 'close') {
        await session.release();
        port.close();
        return;
      }
      try {
        if (message.op === 'run') {
          const { outputs, computeUs, transfer } = await runOnce(session, message.feeds);
          send({ op: 'result', id: message.id, outputs, computeUs }, transfer);
          return;
        }
        const steps: Record<string, Tensor>[] = [];
        const transfer: ArrayBuffer[] = [];
        let carried: Record<string, Tensor> = {};
        let computeUs = 0;
        for (const step of message.steps) {
          const ran = await runOnce(session, { ...step, ...carried });
          computeUs += ran.computeUs;
          steps.push(Object.fromEntries(message.keep.map((name) => [name, ran.outputs[name]!])));
          for (const name of message.keep) {
            const data = ran.outputs[name]!.data;
            if (ArrayBuffer.isView(data)) transfer.push(data.buffer as ArrayBuffer);
          }
          carried = carriedFeeds(ran.outputs, message.carry);
        }
        send({ op: 'sequence-result', id: message.id, outputs: steps, computeUs }, transfer);
      } catch (err) {
        const text = err instanceof Error ? err.message : String(err);
        send({ op: 'error', id: message.id, code: err instanceof FeedError ? 'INVALID_ARGUMENT' : runErrorCode(text), message: text });
      }
    });
  },
  (err: Error) => send({ op: 'load-failed', message: err.message }),
);
