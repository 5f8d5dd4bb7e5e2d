import * as grpc from '@grpc/grpc-js';
import type { DescService } from '@bufbuild/protobuf';
import { GRPCInferenceService } from './gen/inference/grpc_service_pb.js';
import { callUnary, clientConstructor, type CallOptions } from './grpc-service.js';
import { pipelineRequest, readPipelineAnswer, type PipelineAnswer } from './pipeline-wire.js';
import { readPemFile } from './tls.js';

export type { PipelineAnswer };

export interface PipelineCall {
  id?: string;
  /** Sent as the `deadline_ms` parameter and as the gRPC deadline. */
  deadlineMs?: number;
  /** Honoured only by a cloud tier without authentication; with it, the tenant comes from the credentials. */
  tenant?: string;
}

/** PEM file paths; an empty string is unset. */
export interface ClientTls {
  /** CA that signed the server's certificate; empty: the system's trusted CAs. */
  ca: string;
  /** This client's certificate and key, for a server that wants mutual TLS. */
  cert: string;
  key: string;
  /** The name the server's certificate must carry, when it differs from the host in the address. */
  serverName: string;
}

export interface ChannelSecurity {
  /** Absent: plaintext (callers decide where that is allowed, see tls.ts). */
  tls?: Partial<ClientTls>;
  /** Sent as `authorization: Bearer <key>` on every call. */
  apiKey?: string;
}

/**
 * A grpc-js channel to a KServe v2 server (splitinfer cloud, Triton, KServe):
 * TLS with certificate verification when `security.tls` is set, and the API
 * key on every call. The one place both the edge and this package's client
 * connect through.
 */
export function openInferenceChannel(address: string, options: grpc.ClientOptions = {}, security: ChannelSecurity = {}): grpc.Client {
  return openServiceChannel(GRPCInferenceService, address, options, security);
}

/** The same channel for another service of that server (grpc.health.v1 for `splitinfer health`). */
export function openServiceChannel(service: DescService, address: string, options: grpc.ClientOptions = {}, security: ChannelSecurity = {}): grpc.Client {
  const Client = clientConstructor(service);
  const { tls, apiKey } = security;
  if (tls && Boolean(tls.cert) !== Boolean(tls.key)) throw new Error('cloud TLS: a client certificate needs its key and a key its certificate — set both or neither');
  const credentials = tls
    ? grpc.credentials.createSsl(
        tls.ca ? readPemFile(tls.ca, 'cloud TLS CA') : null,
        tls.key ? readPemFile(tls.key, 'cloud TLS client key') : null,
        tls.cert ? readPemFile(tls.cert, 'cloud TLS client certificate') : null,
      )
    : grpc.credentials.createInsecure();
  const nameOverride = tls?.serverName ? { 'grpc.ssl_target_name_override': tls.serverName, 'grpc.default_authority': tls.serverName } : {};
  // An interceptor rather than call credentials: grpc-js refuses call credentials on a plaintext loopback channel.
  const interceptors = apiKey ? [bearerInterceptor(apiKey), ...(options.interceptors ?? [])] : options.interceptors;
  return new Client(address, credentials, { ...options, ...nameOverride, ...(interceptors ? { interceptors } : {}) });
}

function bearerInterceptor(apiKey: string): grpc.Interceptor {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set('authorization', `Bearer ${apiKey}`);
        next(metadata, listener);
      },
    });
}

/** A KServe v2 client for splitinfer pipelines (one BYTES input, JSON `result` output). */
export class InferenceClient {
  readonly grpc: grpc.Client;

  constructor(address: string, options: grpc.ClientOptions = {}, security: ChannelSecurity = {}) {
    this.grpc = openInferenceChannel(address, options, security);
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
