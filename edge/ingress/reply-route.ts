/**
 * Where a response goes. MQTT 5 says it in the PUBLISH properties (Response
 * Topic, Correlation Data: MQTT 5 §4.10); MQTT 3.1.1 has no properties, so the
 * request payload carries `replyTo` and `correlationId`. A client on an MQTT 5
 * broker may use either; the properties win when both are there.
 */
import type { IPublishPacket } from 'mqtt';
import { unpublishableTopicReason } from './topics.js';

export interface ReplyRoute {
  topic: string;
  /** MQTT 5 Correlation Data, returned unchanged in the response's properties. */
  correlationData?: Buffer;
  /** From the payload, returned in the response payload. */
  correlationId?: string;
}

/** The route for a request; `problem` says why a payload `replyTo` was not used (the response then goes to `defaultTopic`). */
export function replyRoute(
  packet: Pick<IPublishPacket, 'properties'>,
  payload: { replyTo?: string; correlationId?: string },
  defaultTopic: string,
  requestTopic: string,
): { route: ReplyRoute; problem?: string } {
  const { responseTopic, correlationData } = packet.properties ?? {};
  const correlation = { correlationData, correlationId: payload.correlationId };
  if (responseTopic) return { route: { topic: responseTopic, ...correlation } };
  if (payload.replyTo === undefined) return { route: { topic: defaultTopic, ...correlation } };
  const reason = payload.replyTo === requestTopic ? 'it is the request topic' : unpublishableTopicReason(payload.replyTo);
  if (reason) return { route: { topic: defaultTopic, ...correlation }, problem: `replyTo '${payload.replyTo}' cannot take responses: ${reason}` };
  return { route: { topic: payload.replyTo, ...correlation } };
}
