/**
 * The benchmark's side of MQTT: an embedded aedes broker and a client that
 * publishes requests as an MQTT 3.1.1 client does (reply address in the
 * payload) and timestamps each reply when it arrives. Latency is measured
 * from just before the publish to the reply's arrival, on this process's clock.
 *
 * Both the broker's sockets and the client's set TCP_NODELAY: mqtt.js writes
 * a PUBLISH as several small writes, and with Nagle's algorithm each hop waits
 * for the peer's delayed ACK (~40 ms).
 */
import net from 'node:net';
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
  ) {
    client.on('message', (topic, payload, packet) => {
      if (topic !== replyTopic) return;
      const receivedAtMs = performance.now();
      const reply = decodeResponse({ topic, payload, packet });
      const entry = reply.correlationId === undefined ? undefined : this.waiting.get(reply.correlationId);
      if (!entry) return;
      this.waiting.delete(reply.correlationId!);
      entry.resolve({ reply, sentAtMs: entry.sentAtMs, receivedAtMs });
    });
  }

  static async connect(broker: TestBroker, name: string): Promise<BenchClient> {
    const client = await connectClient(broker, { clientId: `bench-${name}-${process.pid}` });
    (client.stream as net.Socket).setNoDelay(true);
    const replyTopic = `bench/${name}/replies`;
    await client.subscribeAsync(replyTopic, { qos: 1 });
    return new BenchClient(client, replyTopic);
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
      const payload = pack({ ...body, replyTo: this.replyTopic, correlationId });
      this.client.publishAsync(`splitinfer/v1/${deviceId}/req`, payload, { qos: 1 }).catch(() => {
        // A failed publish shows up as a missing reply, counted as lost.
      });
    });
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}
