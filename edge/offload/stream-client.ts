/**
 * One long-lived ModelStreamInfer stream (Triton's bidi extension to KServe
 * v2) that multiplexes every offloaded item by request id, answers arriving
 * in completion order. It knows nothing of cloud health: it reports what it
 * hears (answers, failures, a broken stream) to its owner, and reopens a
 * broken stream with backoff while the owner wants it open.
 */
import * as grpc from '@grpc/grpc-js';
import { InferError } from '../../shared/errors.js';
import { GRPCInferenceService, type ModelInferResponse, type ModelStreamInferResponse } from '../../shared/gen/inference/grpc_service_pb.js';
import { callUnary, openBidiStream } from '../../shared/grpc-service.js';
import { openInferenceChannel, type ChannelSecurity } from '../../shared/inference-client.js';
import type { Logger } from '../../shared/log.js';
import { readStreamFailure, type PipelineRequest } from '../../shared/pipeline-wire.js';
import { cloudChannelSecurity, type CloudLinkConfig } from './cloud-link.js';

const RECONNECT_INITIAL_MS = 100;
const RECONNECT_MAX_MS = 5_000;

export interface StreamEvents {
  /** An answer came back: `failure` is set when the server answered with an error; `budgetMs` is what the item was given. */
  answered(failure: InferError | undefined, budgetMs: number): void;
  /** An item got no answer within its budget. */
  timedOut(reason: string, budgetMs: number): void;
  /** The stream broke; `unreachable` when the channel cannot even connect. */
  broken(detail: string, unreachable: boolean): void;
  /** Whether a broken stream should be reopened now (the circuit is closed). */
  wanted(): boolean;
}

interface Pending {
  sentAt: number;
  budgetMs: number;
  resolve(response: ModelInferResponse): void;
  reject(err: InferError): void;
}

interface OpenStream {
  call: grpc.ClientDuplexStream<PipelineRequest, ModelStreamInferResponse>;
  pending: Map<string, Pending>;
}

export class StreamClient {
  private readonly address: string;
  private readonly security: ChannelSecurity;
  private channel: grpc.Client;
  private stream: OpenStream | undefined;
  private reconnectDelayMs = RECONNECT_INITIAL_MS;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** When anything last came back from the cloud (an answer or a unary call). */
  lastHeardAt = -Infinity;
  streamsOpened = 0;
  peakPending = 0;

  constructor(
    link: CloudLinkConfig,
    private readonly channelOptions: grpc.ClientOptions,
    private readonly log: Logger,
    private readonly events: StreamEvents,
  ) {
    this.address = link.address;
    this.security = cloudChannelSecurity(link);
    this.channel = this.newChannel();
  }

  /** Items sent and not yet answered. */
  get pendingCount(): number {
    return this.stream?.pending.size ?? 0;
  }

  /** When the oldest unanswered item was sent (undefined: none is pending). */
  oldestPendingSentAt(): number | undefined {
    let oldest: number | undefined;
    for (const pending of this.stream?.pending.values() ?? []) oldest = Math.min(oldest ?? Infinity, pending.sentAt);
    return oldest;
  }

  /** Sends one request on the stream; rejects with DEADLINE_EXCEEDED after `budgetMs`, or with what the server answered. */
  send(request: PipelineRequest & { id: string }, budgetMs: number): Promise<ModelInferResponse> {
    const stream = this.stream ?? this.openStream();
    const id = request.id;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        stream.pending.delete(id);
        this.events.timedOut(`no answer to ${id} within ${budgetMs} ms`, budgetMs);
        reject(new InferError('DEADLINE_EXCEEDED', `the cloud tier did not answer ${id} within ${budgetMs} ms`));
      }, budgetMs);
      const settle = () => clearTimeout(timer);
      stream.pending.set(id, {
        sentAt: performance.now(),
        budgetMs,
        resolve: (response) => (settle(), resolve(response)),
        reject: (err) => (settle(), reject(err)),
      });
      this.peakPending = Math.max(this.peakPending, stream.pending.size);
      stream.call.write(request);
    });
  }

  /** A unary call on the stream's channel (probes); what it answers counts as hearing from the cloud. */
  async unary<T>(call: (channel: grpc.Client) => Promise<T>): Promise<T> {
    const answer = await call(this.channel);
    this.lastHeardAt = performance.now();
    return answer;
  }

  /** ServerReady on the channel; `fresh` first replaces the channel, shedding a dead connection and its reconnect backoff. */
  async ready(timeoutMs: number, fresh: boolean): Promise<boolean> {
    if (fresh) this.replaceChannel();
    const { ready } = await this.unary((channel) => callUnary(channel, GRPCInferenceService.method.serverReady, {}, { deadline: Date.now() + timeoutMs }));
    this.reconnectDelayMs = RECONNECT_INITIAL_MS;
    return ready;
  }

  /** Fails every item in flight with `failure` and drops the stream; a new one opens with the next send. */
  failAll(failure: InferError): void {
    const stream = this.stream;
    if (!stream) return;
    this.stream = undefined;
    for (const pending of stream.pending.values()) pending.reject(failure);
    stream.pending.clear();
    stream.call.cancel();
  }

  /** Opens the stream now if none is open (after the circuit closed). */
  ensureOpen(): void {
    if (!this.closed && !this.stream) this.openStream();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.failAll(new InferError('UNAVAILABLE', 'the offload client is closing'));
    this.channel.close();
  }

  private newChannel(): grpc.Client {
    return openInferenceChannel(this.address, this.channelOptions, this.security);
  }

  private replaceChannel(): void {
    this.failAll(new InferError('UNAVAILABLE', `the connection to the cloud tier at ${this.address} was replaced`));
    this.channel.close();
    this.channel = this.newChannel();
    this.log.debug({ cloud: this.address }, 'offload channel replaced by a fresh connection');
  }

  private openStream(): OpenStream {
    const stream: OpenStream = { call: openBidiStream(this.channel, GRPCInferenceService.method.modelStreamInfer), pending: new Map() };
    this.stream = stream;
    this.streamsOpened++;
    stream.call.on('data', (message: ModelStreamInferResponse) => this.onAnswer(stream, message));
    stream.call.on('error', (err: grpc.ServiceError) => this.onBroken(stream, `${grpc.status[err.code]}: ${err.details}`));
    stream.call.on('status', (s: grpc.StatusObject) => this.onBroken(stream, `${grpc.status[s.code]}: ${s.details || 'the server ended the stream'}`));
    this.log.debug({ cloud: this.address }, 'offload stream opened');
    return stream;
  }

  private onAnswer(stream: OpenStream, message: ModelStreamInferResponse): void {
    this.lastHeardAt = performance.now();
    const id = message.inferResponse?.id ?? '';
    const pending = stream.pending.get(id);
    if (!pending) {
      this.log.debug({ id }, 'cloud answered a task that already timed out');
      return;
    }
    stream.pending.delete(id);
    this.reconnectDelayMs = RECONNECT_INITIAL_MS;
    const failure = message.errorMessage ? readStreamFailure(message) : undefined;
    this.events.answered(failure, pending.budgetMs);
    if (failure) pending.reject(failure);
    else pending.resolve(message.inferResponse!);
  }

  /** Called for both 'error' and 'status'; only the first call for the current stream acts. */
  private onBroken(stream: OpenStream, detail: string): void {
    if (this.stream !== stream) return;
    this.failAll(new InferError('UNAVAILABLE', `the stream to the cloud tier at ${this.address} broke before answering (${detail})`));
    if (this.closed) return;
    const unreachable = this.channel.getChannel().getConnectivityState(false) === grpc.connectivityState.TRANSIENT_FAILURE;
    this.log.warn({ cloud: this.address, detail, unreachable }, 'offload stream broke');
    this.events.broken(detail, unreachable);
    this.scheduleReconnect();
  }

  /** Keeps a stream ready while wanted, backing off while streams keep breaking unanswered. */
  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer || !this.events.wanted()) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.closed && !this.stream && this.events.wanted()) this.openStream();
    }, this.reconnectDelayMs);
    this.reconnectTimer.unref();
    this.reconnectDelayMs = Math.min(this.reconnectDelayMs * 2, RECONNECT_MAX_MS);
  }
}
