import * as grpc from '@grpc/grpc-js';
import { GRPCInferenceService } from './gen/inference/grpc_service_pb.js';
import { callUnary, clientConstructor, type CallOptions } from './grpc-service.js';
import { int64Parameter, numberParameter, ParameterNames, stringParameter } from './infer-parameters.js';
import { decodeInferOutputs, encodeInferInputs } from './tensor-codec.js';
import { bytesTensor, type Tensor } from './tensor.js';

export interface PipelineCall {
  id?: string;
  /** Sent as the `deadline_ms` parameter and as the gRPC deadline. */
  deadlineMs?: number;
  tenant?: string;
}

export interface PipelineAnswer {
  id: string;
  /** The pipeline's JSON `result` output, parsed. */
  result: Record<string, unknown>;
  /** Every output, `result` included. */
  tensors: Record<string, Tensor>;
  /** The server's own queue and compute time, from response parameters. */
  queueUs: number;
  computeUs: number;
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
    const parameters: Record<string, ReturnType<typeof int64Parameter>> = {};
    if (call.deadlineMs) parameters[ParameterNames.deadlineMs] = int64Parameter(call.deadlineMs);
    if (call.tenant) parameters[ParameterNames.tenant] = stringParameter(call.tenant);
    const response = await callUnary(
      this.grpc,
      GRPCInferenceService.method.modelInfer,
      { modelName: model, id: call.id ?? '', parameters, ...encodeInferInputs({ input: bytesTensor([input]) }) },
      options,
    );
    const tensors = decodeInferOutputs(response);
    const resultBytes = tensors.result?.data as Uint8Array[] | undefined;
    return {
      id: response.id,
      result: resultBytes ? (JSON.parse(new TextDecoder().decode(resultBytes[0])) as Record<string, unknown>) : {},
      tensors,
      queueUs: numberParameter(response.parameters, ParameterNames.queueUs) ?? 0,
      computeUs: numberParameter(response.parameters, ParameterNames.computeUs) ?? 0,
    };
  }

  close(): void {
    this.grpc.close();
  }
}
