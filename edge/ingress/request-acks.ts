/**
 * When the agent acknowledges a request (the PUBACK of its QoS 1 PUBLISH):
 * once `receive` says it may (journaled, with a run slot), in the order the
 * requests arrived (MQTT 5 §4.6, MQTT 3.1.1 §4.6: PUBACKs go out in the order
 * of the PUBLISHes). mqtt.js acknowledges when its `handleMessage` calls back
 * and handles no other packet before that, so:
 *
 * - MQTT 5: the broker sends at most Receive Maximum unacknowledged requests,
 *   so the agent lets mqtt.js go on at once (it keeps reading PUBACKs of its
 *   own answers and PINGRESPs) and sends each request's PUBACK itself when
 *   it is due. mqtt.js has no manual acknowledgement; `_sendPacket` is the
 *   one it uses for its own PUBACKs.
 * - MQTT 3.1.1 has no such limit: a broker would send its whole backlog. The
 *   agent holds mqtt.js's callback instead, so nothing more is read until
 *   the request is acknowledged (the broker keeps the rest). Meanwhile
 *   mqtt.js cannot see PINGRESPs, so the agent keeps the connection alive
 *   itself, and PUBACKs of answers are read late: after a connection loss in
 *   a backlog, mqtt.js may publish some answers again.
 */
import type { IPublishPacket, MqttClient } from 'mqtt';
import type { Logger } from '../../shared/log.js';

interface PendingAck {
  messageId: number | undefined;
  stream: unknown;
  ok?: boolean;
}

type SendPacket = (packet: { cmd: 'puback'; messageId: number; reasonCode: number }) => void;

export function installRequestAcks(
  client: MqttClient,
  options: { requestTopic: string; protocolVersion: 4 | 5; keepaliveS: number },
  receive: (packet: IPublishPacket) => Promise<boolean>,
  log: Logger,
): void {
  const due: PendingAck[] = [];
  const sendDue = () => {
    while (due[0]?.ok !== undefined) {
      const { ok, stream, messageId } = due.shift()!;
      // A PUBACK belongs to the connection that delivered the request; after a reconnect the broker delivers it again.
      if (ok && messageId !== undefined && client.stream === stream && client.connected) {
        (client as unknown as { _sendPacket: SendPacket })._sendPacket({ cmd: 'puback', messageId, reasonCode: 0 });
      }
    }
  };
  const received = (packet: IPublishPacket) =>
    receive(packet).catch((err: Error) => {
      log.error({ err: err.stack ?? err.message }, 'request not answered: ingress bug');
      return true;
    });
  client.handleMessage = (packet, done) => {
    if (packet.topic.toString() !== options.requestTopic || packet.qos === 0) {
      if (packet.qos === 0) void received(packet);
      return done();
    }
    const stream = client.stream;
    if (options.protocolVersion === 5) {
      const ack: PendingAck = { messageId: packet.messageId, stream };
      due.push(ack);
      // An error tells mqtt.js not to send the PUBACK itself; it goes on with the next packet.
      done(new Error('acknowledged by the agent when due'));
      void received(packet).then((ok) => {
        ack.ok = ok;
        sendDue();
      });
      return;
    }
    const hold = keepAliveWhileHolding(client, options.keepaliveS);
    void received(packet)
      .then((ok) => (ok && client.stream === stream ? done() : done(new Error('not acknowledged: the broker keeps it'))))
      .finally(() => clearInterval(hold));
  };
}

/** While the read side is held: a PINGREQ every half keepalive (the broker's view), mqtt.js's keepalive timer restarted (its view). */
function keepAliveWhileHolding(client: MqttClient, keepaliveS: number): NodeJS.Timeout {
  client.reschedulePing(true);
  return setInterval(() => {
    if (!client.connected) return;
    client.sendPing();
    client.reschedulePing(true);
  }, (keepaliveS * 1000) / 2);
}
