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
      const feeds: Record<string, ort.Tensor> = {};
      try {
        for (const [name, tensor] of Object.entries(message.feeds)) feeds[name] = toOrt(tensor);
      } catch (err) {
        // A tensor that cannot even be built (bytes, data length against dims) is the caller's.
        send({ op: 'error', id: message.id, code: 'INVALID_ARGUMENT', message: err instanceof Error ? err.message : String(err) });
        return;
      }
      try {
        const started = process.hrtime.bigint();
        const results = await session.run(feeds);
        const computeUs = Number((process.hrtime.bigint() - started) / 1000n);
        const outputs: Record<string, Tensor> = {};
        const transfer: ArrayBuffer[] = [];
        for (const [name, value] of Object.entries(results)) {
          const tensor = fromOrt(value);
          outputs[name] = tensor;
          if (ArrayBuffer.isView(tensor.data)) transfer.push(tensor.data.buffer as ArrayBuffer);
        }
        send({ op: 'result', id: message.id, outputs, computeUs }, transfer);
      } catch (err) {
        const text = err instanceof Error ? err.message : String(err);
        send({ op: 'error', id: message.id, code: runErrorCode(text), message: text });
      }
    });
  },
  (err: Error) => send({ op: 'load-failed', message: err.message }),
);
