import * as grpc from '@grpc/grpc-js';
import { GRPCInferenceService } from './gen/inference/grpc_service_pb.js';
import { callUnary, clientConstructor, type CallOptions } from './grpc-service.js';
import { pipelineRequest, readPipelineAnswer, type PipelineAnswer } from './pipeline-wire.js';

export type { PipelineAnswer };

export interface PipelineCall {
  id?: string;
  /** Sent as the `deadline_ms` parameter and as the gRPC deadline. */
  deadlineMs?: number;
  tenant?: string;
}

/** A KServe v2 client for splitinfer pipelines (one BYTES input, JSON `result` output). */
export class InferenceClient {
  readonly grpc: grpc.Client;

  constructor(address: string, options: grpc.ClientOptions = {}) {
    const Client = clientConstructor(GRPCInferenceService);
    this.grpc = new Client(address, grpc.credentials.createInsecure(), options);
  }

  async inferPipeline(model: string, input: Uint8Array, call: PipelineCall = {}): Promise<PipelineAnswer> {
    const options: CallOptions = call.deadlineMs ? { deadline: Date.now() + call.deadlineMs } : {};
    const request = pipelineRequest(model, input, { id: call.id ?? '', deadlineMs: call.deadlineMs, tenant: call.tenant });
    return readPipelineAnswer(await callUnary(this.grpc, GRPCInferenceService.method.modelInfer, request, options));
  }

  close(): void {
    this.grpc.close();
  }
}
