/**
 * The MQTT floor of the edge benchmark: a device that answers every request
 * on the agent's topics at once, with no inference. It decodes and encodes
 * msgpack and routes the reply as the agent does (MQTT 5 Response Topic and
 * Correlation Data, or the payload's replyTo/correlationId), QoS 1 both ways,
 * so what is left between its round trip and the agent's is the agent's own
 * work.
 */
import type { MqttClient } from 'mqtt';
import { pack, unpack } from 'msgpackr';
import { connectClient, type TestBroker } from '../helpers/mqtt.js';

export class EchoDevice {
  private constructor(private readonly client: MqttClient) {}

  static async start(broker: TestBroker, deviceId: string): Promise<EchoDevice> {
    const client = await connectClient(broker, { clientId: `echo-${deviceId}-${process.pid}` });
    client.on('message', (_topic, payload, packet) => {
      const request = unpack(payload) as { id?: string; replyTo?: string; correlationId?: string };
      const topic = packet.properties?.responseTopic ?? request.replyTo;
      if (!topic) return;
      const { correlationData } = packet.properties ?? {};
      const reply = pack({ id: request.id, correlationId: request.correlationId, results: {}, placement: {}, timings: {} });
      const properties = { contentType: 'application/msgpack', ...(correlationData ? { correlationData } : {}) };
      void client.publishAsync(topic, reply, { qos: 1, ...(broker.protocolVersion === 5 ? { properties } : {}) }).catch(() => {
        // A lost echo shows up as a missing reply.
      });
    });
    await client.subscribeAsync(`splitinfer/v1/${deviceId}/req`, { qos: 1 });
    return new EchoDevice(client);
  }

  async stop(): Promise<void> {
    await this.client.endAsync(true);
  }
}
