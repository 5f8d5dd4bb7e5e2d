/**
 * Shadow versions: after a request is answered, a copy runs on its model's
 * shadow version (config `versions.<id>.shadow`), and only whether the two
 * answers agree is counted (splitinfer_shadow_answers_total). The copy
 * starts after the primary answer is handed back, never touches the response
 * cache, and is skipped when `maxInFlight` copies are running already, so a
 * shadow never delays or fails the answer a caller gets.
 */
import { clone } from '@bufbuild/protobuf';
import { ModelInferRequestSchema, type ModelInferRequest, type ModelInferResponse } from '../shared/gen/inference/grpc_service_pb.js';
import { boolParameter, ParameterNames } from '../shared/infer-parameters.js';
import type { Logger } from '../shared/log.js';
import { pipelineResult } from '../shared/pipeline-wire.js';
import type { InferenceMetrics } from '../shared/metrics.js';
import { decodeInferOutputs } from '../shared/tensor-codec.js';
import type { Tensor } from '../shared/tensor.js';
import { infer, type InferOutcome } from './infer.js';
import type { ModelRepository } from './repository.js';
import { contentAddressedInputs } from './response-cache.js';
import type { SequenceStore } from './sequences.js';

export class ShadowRunner {
  private inFlight = 0;

  constructor(
    private readonly deps: { repository: ModelRepository; sequences: SequenceStore; metrics: InferenceMetrics; log: Logger },
    private readonly maxInFlight = 4,
  ) {}

  /** Copies `request` to the shadow version of the model that answered it, if it has one. */
  copy(request: ModelInferRequest, primary: InferOutcome): void {
    const { repository, sequences, metrics, log } = this.deps;
    const served = primary.served;
    // A sequence model's chunk moves per-sequence state; a copy would move it twice.
    if (served.kind === 'pipeline' && served.loaded.handler.sequence) return;
    // A content-addressed request carries digests, not the inputs a copy would run on.
    if (contentAddressedInputs(request)) return;
    const shadow = repository.shadowOf(served);
    if (shadow === undefined) return;
    const labels = { model: served.name, version: served.version, shadow_version: shadow };
    if (this.inFlight >= this.maxInFlight) {
      metrics.shadowAnswers.inc({ ...labels, outcome: 'skipped' });
      return;
    }
    this.inFlight++;
    const copy = clone(ModelInferRequestSchema, request);
    copy.modelVersion = shadow;
    copy.parameters[ParameterNames.cache] = boolParameter(false);
    setImmediate(() => {
      infer(repository, sequences, copy)
        .then(
          (outcome) => metrics.shadowAnswers.inc({ ...labels, outcome: sameAnswer(primary.response, outcome.response) ? 'agree' : 'disagree' }),
          (err: Error) => {
            metrics.shadowAnswers.inc({ ...labels, outcome: 'failed' });
            log.debug({ model: served.name, shadow, err: err.message }, 'shadow copy failed');
          },
        )
        .finally(() => this.inFlight--);
    });
  }
}

/**
 * Whether two versions gave the same answer: the same outputs, each numeric
 * one with the same top-1 element (as the catalog's agreementWithReference
 * counts) and each BYTES one (an intent, a label, a text) equal. A
 * pipeline's `result` JSON restates its other outputs with scores and
 * runners-up, so it is compared only when it is the sole output, and then
 * with its numbers dropped.
 */
export function sameAnswer(a: ModelInferResponse, b: ModelInferResponse): boolean {
  const left = decodeInferOutputs(a);
  const right = decodeInferOutputs(b);
  const all = Object.keys(left).sort();
  const names = all.length > 1 ? all.filter((name) => name !== pipelineResult.name) : all;
  if (names.length < all.length) delete right[pipelineResult.name];
  if (names.join('\n') !== Object.keys(right).sort().join('\n')) return false;
  return names.every((name) => sameTensor(left[name]!, right[name]!));
}

function sameTensor(a: Tensor, b: Tensor): boolean {
  if (a.type === 'bytes' || b.type === 'bytes') {
    if (a.type !== b.type) return false;
    const left = a.data as Uint8Array[];
    const right = b.data as Uint8Array[];
    return left.length === right.length && left.every((item, i) => withoutNumbers(item) === withoutNumbers(right[i]!));
  }
  return a.dims.join(',') === b.dims.join(',') && argmax(a) === argmax(b);
}

function withoutNumbers(item: Uint8Array): string {
  const text = Buffer.from(item).toString('utf8');
  try {
    return JSON.stringify(JSON.parse(text), (_key, value: unknown) => (typeof value === 'number' ? undefined : value));
  } catch {
    return text;
  }
}

function argmax(t: Tensor): number {
  const data = t.data as ArrayLike<number | bigint>;
  let best = 0;
  for (let i = 1; i < data.length; i++) if (data[i]! > data[best]!) best = i;
  return best;
}
