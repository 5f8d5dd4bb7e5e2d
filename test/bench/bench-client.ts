/**
 * The benchmarks' side of MQTT: a client that publishes requests to an agent
 * and timestamps each reply when it arrives. Over MQTT 5 the reply address
 * travels as Response Topic and Correlation Data; over MQTT 3.1.1 as
 * `replyTo`/`correlationId` in the payload. Latency is measured from just
 * before the publish to the reply's arrival, on this process's clock. Its
 * socket sends without delay (connectClient); the broker's must too (see
 * startMosquitto, startAedes).
 */
import { performance } from 'node:perf_hooks';
import type { MqttClient } from 'mqtt';
import { pack } from 'msgpackr';
import { connectClient, decodeResponse, type AgentReply, type TestBroker } from '../helpers/mqtt.js';

export interface TimedReply {
  reply: AgentReply;
  /** performance.now() just before the publish, and when the reply arrived. */
  sentAtMs: number;
  receivedAtMs: number;
}

export class BenchClient {
  private readonly waiting = new Map<string, { sentAtMs: number; resolve(reply: TimedReply): void }>();
  private sequence = 0;

  private constructor(
    private readonly client: MqttClient,
    private readonly replyTopic: string,
    private readonly protocolVersion: 4 | 5,
  ) {
    client.on('message', (topic, payload, packet) => {
      if (topic !== replyTopic) return;
      const receivedAtMs = performance.now();
      const reply = decodeResponse({ topic, payload, packet });
      const correlationId = protocolVersion === 5 ? packet.properties?.correlationData?.toString() : reply.correlationId;
      const entry = correlationId === undefined ? undefined : this.waiting.get(correlationId);
      if (!entry) return;
      this.waiting.delete(correlationId!);
      entry.resolve({ reply, sentAtMs: entry.sentAtMs, receivedAtMs });
    });
  }

  static async connect(broker: TestBroker, name: string): Promise<BenchClient> {
    const client = await connectClient(broker, { clientId: `bench-${name}-${process.pid}` });
    const replyTopic = `bench/${name}/replies`;
    await client.subscribeAsync(replyTopic, { qos: 1 });
    return new BenchClient(client, replyTopic, broker.protocolVersion);
  }

  /** Publishes one request to a device; resolves with its reply, or undefined after `timeoutMs`. */
  ask(deviceId: string, body: { id: string } & Record<string, unknown>, timeoutMs: number): Promise<TimedReply | undefined> {
    const correlationId = `${body.id}#${++this.sequence}`;
    const sentAtMs = performance.now();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(correlationId);
        resolve(undefined);
      }, timeoutMs);
      this.waiting.set(correlationId, {
        sentAtMs,
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
      });
      const v5 = this.protocolVersion === 5;
      const payload = pack(v5 ? body : { ...body, replyTo: this.replyTopic, correlationId });
      const properties = { responseTopic: this.replyTopic, correlationData: Buffer.from(correlationId), contentType: 'application/msgpack' };
      this.client.publishAsync(`splitinfer/v1/${deviceId}/req`, payload, { qos: 1, ...(v5 ? { properties } : {}) }).catch(() => {
        // A failed publish shows up as a missing reply, counted as lost.
      });
    });
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}
