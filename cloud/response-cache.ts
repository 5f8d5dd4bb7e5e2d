/**
 * Triton's response cache: a successful answer is kept under a key made of
 * everything that decides it, and the same request later is answered
 * without running. Two tiers: in-process, least recently used first out,
 * within a byte budget that counts keys, answers and a fixed per-entry
 * overhead; and optionally a shared store (Redis, redis-cache.ts) that every
 * replica reads and fills. A local miss asks the shared store and keeps what
 * it finds; an answer is kept in both.
 *
 * The key is SHA-256 (node:crypto) over, length-prefixed so no two requests
 * share a byte stream: the served model name and version; every input's
 * name, datatype, shape and content digest (SHA-256 of its raw contents,
 * shared/content-digest.ts), in name order; the requested output names; and
 * every request parameter except those that cannot change the answer
 * (tenant, deadline_ms, cache). An unknown parameter is part of the key, so
 * a new parameter never yields a stale answer. Answers depend on the input
 * only, so tenants share entries, as Triton's do. Because inputs enter the
 * key by digest, a request that sends `content_sha256` per input instead of
 * the contents finds the same entry (content-addressed offload).
 *
 * Never for sequence models: a chunk's answer depends on the chunks before it.
 */
import { createHash, type Hash } from 'node:crypto';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { ModelInferResponseSchema, type ModelInferRequest, type ModelInferResponse } from '../shared/gen/inference/grpc_service_pb.js';
import { contentSha256 } from '../shared/content-digest.js';
import { InferError } from '../shared/errors.js';
import { ParameterNames, stringParameterValue } from '../shared/infer-parameters.js';
import { toV2Datatype } from '../shared/tensor-codec.js';
import type { Tensor } from '../shared/tensor.js';

/** Request parameters that never change an answer, left out of the key. */
const answerNeutralParameters: ReadonlySet<string> = new Set([ParameterNames.tenant, ParameterNames.deadlineMs, ParameterNames.cache, ParameterNames.traceparent, ParameterNames.abKey]);

/** Bookkeeping per entry on top of key and answer bytes (Map slot, strings, Uint8Array header). */
const ENTRY_OVERHEAD_BYTES = 160;

/** What the key takes of one input: its contents only by digest. */
export interface InputDigest {
  name: string;
  datatype: string;
  shape: readonly number[];
  sha256: string;
}

export function inputDigests(inputs: Record<string, Tensor>): InputDigest[] {
  return Object.entries(inputs).map(([name, t]) => ({ name, datatype: toV2Datatype(t.type), shape: t.dims, sha256: contentSha256(t) }));
}

/**
 * The inputs of a content-addressed request (every input names its digest
 * in `content_sha256` and carries no contents), or undefined for an ordinary
 * request; INVALID_ARGUMENT for a mix, which no answer could be found for.
 */
export function contentAddressedInputs(request: Pick<ModelInferRequest, 'inputs' | 'rawInputContents'>): InputDigest[] | undefined {
  const digests = request.inputs.map((i) => stringParameterValue(i.parameters, ParameterNames.contentSha256));
  if (digests.every((d) => d === undefined)) return undefined;
  const bad = request.inputs.find((input, i) => !/^[0-9a-f]{64}$/.test(digests[i] ?? '') || input.contents !== undefined);
  if (bad || request.rawInputContents.length > 0) {
    throw new InferError(
      'INVALID_ARGUMENT',
      `a content-addressed request names every input's '${ParameterNames.contentSha256}' (64 lowercase hex digits, SHA-256 of its raw contents) and sends no contents` +
        `${bad ? `; input '${bad.name}' does not` : '; this one also sends raw_input_contents'} — send either digests only, or the full request`,
    );
  }
  return request.inputs.map((input, i) => ({ name: input.name, datatype: input.datatype, shape: input.shape.map(Number), sha256: digests[i]! }));
}

export function responseCacheKey(model: { name: string; version: string }, inputs: readonly InputDigest[], request: Pick<ModelInferRequest, 'outputs' | 'parameters'>): string {
  const hash = createHash('sha256');
  const field = (text: string) => withLength(hash, Buffer.from(text, 'utf8'));
  field('splitinfer-response-cache-v2');
  field(model.name);
  field(model.version);
  for (const input of [...inputs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    field(input.name);
    field(input.datatype);
    field(input.shape.join(','));
    field(input.sha256);
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

/** A cache shared by replicas. Never throws: a store that cannot answer in time answers nothing. */
export interface SharedResponseStore {
  get(key: string): Promise<Uint8Array | undefined>;
  /** Keeps an answer; returns at once (the answer is not held up by the store). */
  set(key: string, bytes: Uint8Array): void;
  close(): Promise<void>;
}

export class ResponseCache {
  private readonly entries = new Map<string, Uint8Array>();
  private heldBytes = 0;

  /** `maxBytes` 0: no in-process tier (the shared store alone). */
  constructor(
    readonly maxBytes: number,
    readonly shared?: SharedResponseStore,
  ) {}

  get bytes(): number {
    return this.heldBytes;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The answer stored under `key` (in-process, else shared) with the caller's request id, or undefined. */
  async lookup(key: string, requestId: string): Promise<ModelInferResponse | undefined> {
    let stored = this.entries.get(key);
    if (stored) {
      // Most recently used last: the Map's insertion order is the eviction order.
      this.entries.delete(key);
      this.entries.set(key, stored);
    } else if (this.shared) {
      stored = await this.shared.get(key);
      if (stored) this.keep(key, stored);
    }
    if (!stored) return undefined;
    const response = fromBinary(ModelInferResponseSchema, stored);
    response.id = requestId;
    return response;
  }

  /** Keeps a successful answer, without its request id and per-run parameters, in both tiers. */
  store(key: string, response: ModelInferResponse): void {
    const bytes = toBinary(ModelInferResponseSchema, { ...response, id: '', parameters: {} });
    this.keep(key, bytes);
    this.shared?.set(key, bytes);
  }

  close(): Promise<void> {
    return this.shared?.close() ?? Promise.resolve();
  }

  /** In-process; one larger than the whole budget is not kept. */
  private keep(key: string, bytes: Uint8Array): void {
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
