/**
 * Triton's response cache: a successful answer is kept under a key made of
 * everything that decides it, and the same request later is answered
 * without running. In-process, least recently used first out, within a byte
 * budget that counts keys, answers and a fixed per-entry overhead.
 *
 * The key is SHA-256 (node:crypto) over, length-prefixed so no two requests
 * share a byte stream: the served model name and version; every input's
 * name, datatype, shape and bytes, in name order; the requested output
 * names; and every request parameter except those that cannot change the
 * answer (tenant, deadline_ms, cache). An unknown parameter is part of the
 * key, so a new parameter never yields a stale answer. Answers depend on
 * the input only, so tenants share entries, as Triton's do.
 *
 * Never for sequence models: a chunk's answer depends on the chunks before it.
 */
import { createHash, type Hash } from 'node:crypto';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { ModelInferResponseSchema, type ModelInferRequest, type ModelInferResponse } from '../shared/gen/inference/grpc_service_pb.js';
import { ParameterNames } from '../shared/infer-parameters.js';
import { toV2Datatype } from '../shared/tensor-codec.js';
import type { Tensor } from '../shared/tensor.js';

/** Request parameters that never change an answer, left out of the key. */
const answerNeutralParameters: ReadonlySet<string> = new Set([ParameterNames.tenant, ParameterNames.deadlineMs, ParameterNames.cache, ParameterNames.traceparent]);

/** Bookkeeping per entry on top of key and answer bytes (Map slot, strings, Uint8Array header). */
const ENTRY_OVERHEAD_BYTES = 160;

export function responseCacheKey(model: { name: string; version: string }, inputs: Record<string, Tensor>, request: Pick<ModelInferRequest, 'outputs' | 'parameters'>): string {
  const hash = createHash('sha256');
  const field = (text: string) => withLength(hash, Buffer.from(text, 'utf8'));
  field('splitinfer-response-cache-v1');
  field(model.name);
  field(model.version);
  for (const name of Object.keys(inputs).sort()) {
    const t = inputs[name]!;
    field(name);
    field(toV2Datatype(t.type));
    field(t.dims.join(','));
    if (t.type === 'bytes') for (const item of t.data as Uint8Array[]) withLength(hash, item);
    else {
      const data = t.data as Exclude<Tensor['data'], Uint8Array[]>;
      withLength(hash, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
  }
  field(`outputs:${request.outputs.map((o) => o.name).sort().join(',')}`);
  for (const name of Object.keys(request.parameters).sort()) {
    if (answerNeutralParameters.has(name)) continue;
    const choice = request.parameters[name]!.parameterChoice;
    field(`${name}=${choice.case ?? ''}:${String(choice.value)}`);
  }
  return hash.digest('hex');
}

function withLength(hash: Hash, bytes: Uint8Array): void {
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(bytes.byteLength));
  hash.update(length);
  hash.update(bytes);
}

export class ResponseCache {
  private readonly entries = new Map<string, Uint8Array>();
  private heldBytes = 0;

  constructor(readonly maxBytes: number) {}

  get bytes(): number {
    return this.heldBytes;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The answer stored under `key` with the caller's request id, or undefined. */
  lookup(key: string, requestId: string): ModelInferResponse | undefined {
    const stored = this.entries.get(key);
    if (!stored) return undefined;
    // Most recently used last: the Map's insertion order is the eviction order.
    this.entries.delete(key);
    this.entries.set(key, stored);
    const response = fromBinary(ModelInferResponseSchema, stored);
    response.id = requestId;
    return response;
  }

  /** Keeps a successful answer, without its request id and per-run parameters; one larger than the whole budget is not kept. */
  store(key: string, response: ModelInferResponse): void {
    const bytes = toBinary(ModelInferResponseSchema, { ...response, id: '', parameters: {} });
    const cost = entryCost(key, bytes);
    if (cost > this.maxBytes) return;
    this.remove(key);
    this.entries.set(key, bytes);
    this.heldBytes += cost;
    for (const [oldest] of this.entries) {
      if (this.heldBytes <= this.maxBytes) break;
      this.remove(oldest);
    }
  }

  private remove(key: string): void {
    const stored = this.entries.get(key);
    if (!stored) return;
    this.entries.delete(key);
    this.heldBytes -= entryCost(key, stored);
  }
}

function entryCost(key: string, bytes: Uint8Array): number {
  return key.length + bytes.byteLength + ENTRY_OVERHEAD_BYTES;
}
