/**
 * The agent's MQTT side: a persistent QoS 1 session on `splitinfer/v1/<deviceId>/req`,
 * one response per request on the route the request names (reply-route.ts),
 * at QoS 2 from a durable outgoing store (outgoing-store.ts), retained
 * `status` with `offline` as the last will; reconnects back off when the
 * session keeps being taken (reconnect-backoff.ts).
 *
 * Choices a client can rely on:
 * - A request is acknowledged (PUBACK) only once it is journaled in the
 *   agent's state folder and has a run slot; until then the broker keeps the
 *   rest (request-acks.ts), so a backlog is worked off in order rather than
 *   refused. request-delivery.ts has the whole order, delivery-ledger.ts
 *   what is kept and for how long.
 * - A request id seen again on the same reply topic is run once: a repeat on
 *   the same reply address (topic + correlation) is a retransmission and is
 *   not answered again; on a new correlation it gets the one run's answer.
 * - A request whose reply address is refused (reply-route.ts) gets no
 *   publish at all; it is logged and counted (`refusedReplies`).
 * - A video is answered progressively: one message per chunk (`final:
 *   false`), then the answer (`final: true`), all to the same reply address.
 *   Only the final answer is stored; chunk messages are not sent again.
 * - Every other message on `req` is answered, bad ones with an
 *   `errors.request` entry: INVALID_ARGUMENT for what a client must fix
 *   (a limit it went over names the limit), DEADLINE_EXCEEDED for one whose
 *   deadline passed before it could run.
 */
import net from 'node:net';
import mqtt, { UniqueMessageIdProvider, type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { InferError, toInferError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { EdgeConfig } from '../config.js';
import { brokerConnectOptions } from './broker-security.js';
import { resolveStateDir } from './delivery-config.js';
import { DeliveryLedger, type StoredRoute } from './delivery-ledger.js';
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
  type RequestValidators,
  type ResponsePayload,
} from './payload.js';
import { OutgoingStore } from './outgoing-store.js';
import { installReconnectBackoff } from './reconnect-backoff.js';
import { replyRoute, type ReplyRules } from './reply-route.js';
import { installRequestAcks } from './request-acks.js';
import { requestTraceparent, traceUserProperties } from './request-trace.js';
import { RequestDelivery, type DeliveryCounts, type RequestHandler } from './request-delivery.js';
import { deviceTopics, type DeviceTopics } from './topics.js';
import { within } from '../../shared/within.js';

export type { RequestHandler };

export interface IngressCounts extends DeliveryCounts {
  /** Messages on the request topic. */
  received: number;
  /** Responses the broker acknowledged (errors included). */
  answered: number;
  /** Video chunk messages the broker acknowledged. */
  chunksPublished: number;
  /** Refused before reaching the agent: malformed, oversize, wrong shape. */
  invalid: number;
  /** Not answered at all: the reply address they named is not allowed. */
  refusedReplies: number;
  /** Waiting for a run slot or running. */
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
  private readonly counts = { received: 0, answered: 0, chunksPublished: 0, invalid: 0, refusedReplies: 0 };
  private readonly validators: RequestValidators;
  private readonly replyRules: ReplyRules;
  private readonly delivery: RequestDelivery;
  private closed: Promise<void> | undefined;

  private constructor(
    readonly client: MqttClient,
    private readonly config: EdgeConfig,
    handler: RequestHandler,
    readonly ledger: DeliveryLedger,
    private readonly outgoingStore: OutgoingStore,
    private readonly log: Logger,
  ) {
    this.topics = deviceTopics(config.deviceId);
    this.validators = requestValidators(config.limits);
    this.replyRules = { defaultTopic: this.topics.res, requestTopic: this.topics.req, prefixes: config.replyPrefixes, maxTopicBytes: config.limits.maxReplyTopicBytes };
    const { maxConcurrentRequests, maxConcurrentPerRequester } = config.limits;
    const settings = { ...config.delivery, maxConcurrentRequests, maxConcurrentPerRequester, defaultDeadlineMs: config.offload.defaultDeadlineMs };
    this.delivery = new RequestDelivery(ledger, handler, (route, response, kind, tag) => this.reply(route, response, kind, tag), settings, log);
  }

  /**
   * Opens the journal and answers what it holds unanswered, connects (retrying until the broker
   * answers), subscribes, publishes `online`; resolves once serving.
   */
  static async start(config: EdgeConfig, handler: RequestHandler, log: Logger): Promise<MqttIngress> {
    const topics = deviceTopics(config.deviceId);
    const stateDir = resolveStateDir(config.stateDir);
    const { ledger, tornBytes } = await DeliveryLedger.open(stateDir, config.deviceId, config.delivery, log);
    if (tornBytes > 0) log.warn({ journal: ledger.file, tornBytes }, 'the journal ended in a torn record (a crash while writing it); cut off');
    const outgoingStore = await OutgoingStore.open(stateDir, config.deviceId);
    // What a recovered answer publishes before the first connect must not take the id of a packet the last process left in flight.
    const messageIdProvider = new UniqueMessageIdProvider();
    for (const id of outgoingStore.messageIds) messageIdProvider.register(id);
    const { url, protocolVersion, keepaliveS } = config.broker;
    const options: IClientOptions = {
      clientId: ingressClientId(config.deviceId),
      clean: false,
      protocolVersion,
      keepalive: keepaliveS,
      reconnectPeriod: 1_000,
      connectTimeout: 10_000,
      // Answers in flight outlive the process with their packet ids (outgoing-store.ts); ids still in flight are not reused.
      outgoingStore,
      messageIdProvider,
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
    installReconnectBackoff(client, options.clientId!, log);
    // Before the listener below that subscribes: every packet of a session goes out without delay.
    client.on('connect', () => sendWithoutDelay(client));
    const ingress = new MqttIngress(client, config, handler, ledger, outgoingStore, log);
    // Before any delivery can add to the journal: what it held at start is what a crash left (mqtt.js sends the answers once connected).
    ingress.delivery.recover((tag) => outgoingStore.hasSeen(tag));
    installRequestAcks(client, { requestTopic: topics.req, protocolVersion, keepaliveS }, (packet) => ingress.receive(packet), log);
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
      await ingress.delivery.drain(0);
      await client.endAsync(true);
      throw err;
    });
    log.info(
      { broker: url, protocolVersion, clientId: options.clientId, topic: topics.req, journal: ledger.file, answerQos: config.delivery.answerQos, ...ingress.delivery.counts },
      'mqtt ingress serving',
    );
    return ingress;
  }

  stats(): IngressCounts {
    return { ...this.counts, ...this.delivery.counts, inFlight: this.delivery.inFlight };
  }

  /**
   * Stops acknowledging requests (the broker keeps new ones in the persistent
   * session for the next start: the subscription stays), lets running ones
   * finish within `delivery.drainTimeoutMs` (the unfinished stay journaled
   * and run at the next start), publishes retained `offline`, disconnects.
   */
  close(timeoutMs = this.config.delivery.drainTimeoutMs): Promise<void> {
    this.closed ??= (async () => {
      await this.delivery.drain(timeoutMs);
      // When the connection is already gone, the broker has published the will.
      if (this.client.connected) await within(this.client.publishAsync(this.topics.status, 'offline', { qos: 1, retain: true }), 1_000);
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

  /** Resolves true once the request may be acknowledged. */
  private async receive(packet: IPublishPacket): Promise<boolean> {
    this.counts.received++;
    const receivedAt = Date.now();
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    const traceparent = requestTraceparent(packet);
    const fromProperties = replyRoute(packet, {}, this.replyRules);
    if (fromProperties.refused) return this.refuseReply(fromProperties.refused);
    let route: StoredRoute = { ...fromProperties.route, format: 'json', traceparent };
    let id: string | undefined;
    let decoded: DecodedRequest;
    try {
      route.format = payloadFormat(packet.properties?.contentType, payload);
      const { maxPayloadBytes } = this.config.limits;
      if (payload.length > maxPayloadBytes) {
        throw new InferError('RESOURCE_EXHAUSTED', `request payload is ${payload.length} bytes, over the limit of ${maxPayloadBytes} (limits.maxPayloadBytes) — send smaller media`);
      }
      const doc = parsePayload(payload, route.format);
      const envelope = envelopeOf(doc, this.config.limits.maxIdLength);
      id = envelope.id;
      const routed = replyRoute(packet, envelope, this.replyRules);
      if (routed.refused) return this.refuseReply(routed.refused, id);
      route = { ...routed.route, format: route.format, traceparent };
      decoded = toAgentRequest(doc, route.format, this.validators);
    } catch (err) {
      this.counts.invalid++;
      const error = toInferError(err);
      this.log.warn({ id, traceparent, code: error.code, replyTo: route.topic, payloadBytes: payload.length, reason: error.message }, 'request refused');
      void this.reply(route, requestErrorResponse(error.code, error.message, id));
      return true;
    }
    const request = { ...decoded.request, traceparent };
    const started = performance.now();
    const key = `${route.topic}\u0000${request.id}`;
    this.log.debug({ id: request.id, traceparent, messageId: packet.messageId, dup: packet.dup }, 'request received');
    return this.delivery.receive({ key, request, route, receivedAt, payloadBytes: payload.length }).then((ack) => {
      this.log.debug({ id: request.id, messageId: packet.messageId, ack, waitedMs: Math.round(performance.now() - started) }, 'request acknowledged');
      return ack;
    });
  }

  private refuseReply(reason: string, id?: string): boolean {
    this.counts.refusedReplies++;
    this.log.warn({ id, reason }, 'request not answered: its reply address is refused');
    return true;
  }

  /**
   * Publishes on a route. An answer resolves true once it is in the durable
   * outgoing store (from there mqtt.js delivers it, across reconnects and
   * restarts); one that never got there is published again on the next
   * connection. A chunk resolves true once the broker acknowledged it.
   */
  private async reply(route: StoredRoute, response: ResponsePayload, kind: 'answer' | 'chunk' = 'answer', tag?: string): Promise<boolean> {
    const body = encodeResponse(route.correlationId === undefined ? response : { ...response, correlationId: route.correlationId }, route.format);
    const properties =
      this.config.broker.protocolVersion === 5
        ? {
            contentType: contentTypes[route.format],
            ...(route.correlationData ? { correlationData: Buffer.from(route.correlationData) } : {}),
            ...traceUserProperties(route.traceparent),
          }
        : undefined;
    if (kind === 'answer') {
      this.log.info({ id: (response as { id?: string }).id, traceparent: route.traceparent, replyTo: route.topic, errors: Object.keys(response.errors ?? {}) }, 'request answered');
    }
    const qos = kind === 'answer' ? this.config.delivery.answerQos : 1;
    for (;;) {
      if (tag !== undefined) this.outgoingStore.expectTag(route.topic, body, tag);
      let stored!: () => void;
      const inStore = new Promise<boolean>((resolve) => (stored = () => resolve(true)));
      const acknowledged = this.client.publishAsync(route.topic, body, { qos, ...(properties ? { properties } : {}), cbStorePut: stored }).then(
        () => {
          this.counts[kind === 'answer' ? 'answered' : 'chunksPublished']++;
          return true;
        },
        (err: Error) => {
          this.log.error({ topic: route.topic, err: err.message }, 'cannot publish a response');
          return false;
        },
      );
      if (await (kind === 'answer' ? Promise.race([inStore, acknowledged]) : acknowledged)) return true;
      if (kind === 'chunk' || this.closed) return false;
      await new Promise<void>((resolve) => this.client.once('connect', () => resolve()));
    }
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

