/**
 * The agent's MQTT side: a persistent QoS 1 session on `splitinfer/v1/<deviceId>/req`,
 * one response per request on the route the request names (reply-route.ts),
 * retained `status` with `offline` as the last will.
 *
 * Choices a client can rely on:
 * - A request id seen again on the same reply topic while it runs or after it
 *   was answered (a QoS 1 redelivery) is dropped: the first run's response is
 *   its only answer. The window is the last `dedupWindow` ids.
 * - A request whose reply address is refused (reply-route.ts) gets no
 *   publish at all; it is logged and counted (`refusedReplies`).
 * - A video is answered progressively: one message per chunk (`final:
 *   false`), then the answer (`final: true`), all to the same reply address.
 * - Every other message on `req` is answered, bad ones with an
 *   `errors.request` entry: INVALID_ARGUMENT for what a client must fix
 *   (a limit it went over names the limit),
 *   RESOURCE_EXHAUSTED when `maxConcurrentRequests` are already running (retry
 *   later; the broker keeps no backlog for us), UNAVAILABLE while shutting down.
 */
import net from 'node:net';
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { InferError, toInferError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { EdgeConfig } from '../config.js';
import type { AgentRequest, AgentResponse, ChunkMessage } from '../request.js';
import {
  contentTypes,
  encodeResponse,
  envelopeOf,
  parsePayload,
  payloadFormat,
  requestErrorResponse,
  toAgentRequest,
  requestValidators,
  type DecodedRequest,
  type PayloadFormat,
  type RequestValidators,
  type ResponsePayload,
} from './payload.js';
import { brokerConnectOptions } from './broker-security.js';
import { replyRoute, type ReplyRoute, type ReplyRules } from './reply-route.js';
import { RecentRequestIds } from './request-dedup.js';
import { deviceTopics, type DeviceTopics } from './topics.js';

/** What the ingress hands requests to (the EdgeAgent, or anything that answers requests). */
export interface RequestHandler {
  /** `publishChunk` sends a video chunk's answer ahead of the response, to the same reply address. */
  handle(request: AgentRequest, publishChunk?: (message: ChunkMessage) => void): Promise<AgentResponse>;
}

export interface IngressCounts {
  /** Messages on the request topic. */
  received: number;
  /** Responses the broker acknowledged (errors included). */
  answered: number;
  /** Video chunk messages the broker acknowledged. */
  chunksPublished: number;
  /** Refused before reaching the agent: malformed, oversize, wrong shape. */
  invalid: number;
  /** Redeliveries of an id already seen, not answered again. */
  duplicates: number;
  /** Refused because maxConcurrentRequests were running. */
  busy: number;
  /** Not answered at all: the reply address they named is not allowed. */
  refusedReplies: number;
  inFlight: number;
}

/** Sessions outlive a disconnect by a day (MQTT 5 Session Expiry Interval, seconds), so QoS 1 requests wait for the agent. */
const sessionExpiryS = 86_400;

/** Room for the topic, properties and msgpack/JSON framing on top of limits.maxPayloadBytes in the Maximum Packet Size. */
const packetOverheadBytes = 64 * 1024;

export function ingressClientId(deviceId: string): string {
  return `splitinfer-edge-${deviceId}`;
}

export class MqttIngress {
  readonly topics: DeviceTopics;
  private readonly counts: IngressCounts = { received: 0, answered: 0, chunksPublished: 0, invalid: 0, duplicates: 0, busy: 0, refusedReplies: 0, inFlight: 0 };
  private readonly recent: RecentRequestIds;
  private readonly validators: RequestValidators;
  private readonly replyRules: ReplyRules;
  private readonly publishing = new Set<Promise<unknown>>();
  private idleWaiters: (() => void)[] = [];
  private closed: Promise<void> | undefined;

  private constructor(
    readonly client: MqttClient,
    private readonly config: EdgeConfig,
    private readonly handler: RequestHandler,
    private readonly log: Logger,
  ) {
    this.topics = deviceTopics(config.deviceId);
    this.recent = new RecentRequestIds(config.dedupWindow);
    this.validators = requestValidators(config.limits);
    this.replyRules = { defaultTopic: this.topics.res, requestTopic: this.topics.req, prefixes: config.replyPrefixes, maxTopicBytes: config.limits.maxReplyTopicBytes };
  }

  /** Connects (retrying until the broker answers), subscribes, and publishes `online`; resolves once serving. */
  static async start(config: EdgeConfig, handler: RequestHandler, log: Logger): Promise<MqttIngress> {
    const topics = deviceTopics(config.deviceId);
    const { url, protocolVersion, keepaliveS } = config.broker;
    const options: IClientOptions = {
      clientId: ingressClientId(config.deviceId),
      clean: false,
      protocolVersion,
      keepalive: keepaliveS,
      reconnectPeriod: 1_000,
      connectTimeout: 10_000,
      // Subscribed on every connect below, so a broker that lost the session gets it back.
      resubscribe: false,
      will: { topic: topics.status, payload: Buffer.from('offline'), qos: 1, retain: true },
      ...brokerConnectOptions(config.broker),
      // MQTT 5 §3.1.2.11: the broker sends at most Receive Maximum unacknowledged requests and none over Maximum Packet Size.
      ...(protocolVersion === 5
        ? {
            properties: {
              sessionExpiryInterval: sessionExpiryS,
              receiveMaximum: config.limits.maxConcurrentRequests,
              maximumPacketSize: config.limits.maxPayloadBytes + packetOverheadBytes,
            },
          }
        : {}),
    };
    const client = mqtt.connect(url, options);
    // Before the listener below that subscribes: every packet of a session goes out without delay.
    client.on('connect', () => sendWithoutDelay(client));
    const ingress = new MqttIngress(client, config, handler, log);
    client.on('message', (topic, payload, packet) => {
      if (topic !== topics.req) return;
      // serve() answers every failure it knows of; this only catches a bug, so it cannot take the process down.
      ingress.serve(payload, packet).catch((err: Error) => log.error({ err: err.stack ?? err.message }, 'request not answered: ingress bug'));
    });
    client.on('error', (err) => log.warn({ err: err.message, broker: url }, 'mqtt error'));
    client.on('offline', () => log.warn({ broker: url }, 'mqtt broker unreachable, reconnecting'));
    await new Promise<void>((resolve, reject) => {
      let first = true;
      client.on('connect', (connack) => {
        ingress.announce(connack.sessionPresent).then(
          () => {
            if (first) resolve();
            first = false;
          },
          (err: Error) => {
            if (first) reject(err);
            else log.error({ err: err.message }, 'cannot subscribe after reconnect');
          },
        );
      });
    }).catch(async (err: Error) => {
      await client.endAsync(true);
      throw err;
    });
    log.info({ broker: url, protocolVersion, clientId: options.clientId, topic: topics.req }, 'mqtt ingress serving');
    return ingress;
  }

  stats(): IngressCounts {
    return { ...this.counts };
  }

  /** Lets running requests finish (up to timeoutMs), publishes retained `offline`, disconnects. */
  close(timeoutMs = 10_000): Promise<void> {
    this.closed ??= (async () => {
      const deadline = Date.now() + timeoutMs;
      await withTimeout(this.idle(), timeoutMs);
      await withTimeout(Promise.allSettled(this.publishing), deadline - Date.now());
      // When the connection is already gone, the broker has published the will.
      if (this.client.connected) await withTimeout(this.client.publishAsync(this.topics.status, 'offline', { qos: 1, retain: true }), Math.max(deadline - Date.now(), 1_000));
      await this.client.endAsync(!this.client.connected);
      this.log.info('mqtt ingress closed');
    })();
    return this.closed;
  }

  private async announce(sessionPresent: boolean): Promise<void> {
    const granted = await this.client.subscribeAsync(this.topics.req, { qos: 1 });
    if (granted.some((g) => g.qos !== 1 && g.qos !== 0)) throw new Error(`broker refused the subscription to ${this.topics.req} (check its ACL)`);
    await this.client.publishAsync(this.topics.status, 'online', { qos: 1, retain: true });
    this.log.info({ sessionPresent }, 'connected to broker');
  }

  private async serve(payload: Buffer, packet: IPublishPacket): Promise<void> {
    this.counts.received++;
    const started = performance.now();
    const fromProperties = replyRoute(packet, {}, this.replyRules);
    if (fromProperties.refused) return this.refuseReply(fromProperties.refused);
    let route: ReplyRoute = fromProperties.route;
    let format: PayloadFormat = 'json';
    let id: string | undefined;
    let decoded: DecodedRequest;
    try {
      format = payloadFormat(packet.properties?.contentType, payload);
      const { maxPayloadBytes } = this.config.limits;
      if (payload.length > maxPayloadBytes) {
        throw new InferError('RESOURCE_EXHAUSTED', `request payload is ${payload.length} bytes, over the limit of ${maxPayloadBytes} (limits.maxPayloadBytes) — send smaller media`);
      }
      const doc = parsePayload(payload, format);
      const envelope = envelopeOf(doc, this.config.limits.maxIdLength);
      id = envelope.id;
      const routed = replyRoute(packet, envelope, this.replyRules);
      if (routed.refused) return this.refuseReply(routed.refused, id);
      route = routed.route;
      decoded = toAgentRequest(doc, format, this.validators);
    } catch (err) {
      this.counts.invalid++;
      return this.refuse(toInferError(err), route, format, id, payload.length);
    }
    const { request } = decoded;
    if (this.closed) return this.refuse(new InferError('UNAVAILABLE', 'the agent is shutting down — publish the request again once its status is online'), route, format, request.id);
    const key = `${route.topic}\u0000${request.id}`;
    if (!this.recent.add(key)) {
      this.counts.duplicates++;
      this.log.info({ id: request.id, replyTo: route.topic }, 'redelivered request id: already answered or running, answered once');
      return;
    }
    const { maxConcurrentRequests } = this.config.limits;
    if (this.counts.inFlight >= maxConcurrentRequests) {
      this.recent.forget(key);
      this.counts.busy++;
      const message = `the agent is busy with ${maxConcurrentRequests} requests (limits.maxConcurrentRequests) — retry later`;
      return this.refuse(new InferError('RESOURCE_EXHAUSTED', message), route, format, request.id);
    }
    this.counts.inFlight++;
    let response: ResponsePayload;
    try {
      // Published in call order on one connection, so chunks arrive in order and before the final answer.
      response = await this.handler.handle(request, (message) => this.reply(route, format, message, 'chunk'));
    } catch (err) {
      const failure = toInferError(err);
      this.log.error({ id: request.id, err: failure.message }, 'agent failed on a request');
      response = requestErrorResponse(failure.code, `the agent failed on this request: ${failure.message}`, request.id);
    } finally {
      this.counts.inFlight--;
      if (this.counts.inFlight === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    }
    this.reply(route, format, response);
    this.log.info(
      { id: request.id, format, replyTo: route.topic, modalities: Object.keys(request.inputs), errors: Object.keys(response.errors ?? {}), ms: Math.round(performance.now() - started) },
      'request answered',
    );
  }

  private refuseReply(reason: string, id?: string): void {
    this.counts.refusedReplies++;
    this.log.warn({ id, reason }, 'request not answered: its reply address is refused');
  }

  private refuse(error: InferError, route: ReplyRoute, format: PayloadFormat, id?: string, payloadBytes?: number): void {
    this.log.warn({ id, code: error.code, replyTo: route.topic, payloadBytes, reason: error.message }, 'request refused');
    this.reply(route, format, requestErrorResponse(error.code, error.message, id));
  }

  private reply(route: ReplyRoute, format: PayloadFormat, response: ResponsePayload, kind: 'answer' | 'chunk' = 'answer'): void {
    const body = encodeResponse(route.correlationId === undefined ? response : { ...response, correlationId: route.correlationId }, format);
    const properties =
      this.config.broker.protocolVersion === 5
        ? { contentType: contentTypes[format], ...(route.correlationData ? { correlationData: route.correlationData } : {}) }
        : undefined;
    const sent = this.client
      .publishAsync(route.topic, body, { qos: 1, ...(properties ? { properties } : {}) })
      .then(
        () => void this.counts[kind === 'answer' ? 'answered' : 'chunksPublished']++,
        (err: Error) => this.log.error({ topic: route.topic, err: err.message }, 'cannot publish a response'),
      )
      .finally(() => this.publishing.delete(sent));
    this.publishing.add(sent);
  }

  private idle(): Promise<void> {
    if (this.counts.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}

/**
 * Turns Nagle's algorithm off on the client's socket (mqtt.js leaves it on and
 * has no option for it; each reconnect opens a new socket). The agent sends a
 * PUBACK as soon as a request arrives and the response a few ms later; with
 * Nagle the response waits until the broker ACKs the PUBACK, and the broker's
 * kernel delays that ACK (40 ms on Linux) because it has nothing to send back:
 * every answer came ~40 ms late. WebSocket streams are not net.Sockets: ws
 * already sets TCP_NODELAY on its own socket.
 */
function sendWithoutDelay(client: MqttClient): void {
  if (client.stream instanceof net.Socket) client.stream.setNoDelay(true);
}

async function withTimeout(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(ms, 0))))]);
  clearTimeout(timer);
}
