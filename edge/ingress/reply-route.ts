/**
 * Where a response goes. MQTT 5 says it in the PUBLISH properties (Response
 * Topic, Correlation Data: MQTT 5 §4.10); MQTT 3.1.1 has no properties, so the
 * request payload carries `replyTo` and `correlationId`. A client on an MQTT 5
 * broker may use either; the properties win when both are there.
 *
 * A reply address is where the agent publishes with its own identity, so a
 * client must not be able to point it at another device's `req` or `status`,
 * at broker `$` topics, or anywhere outside what the operator allows
 * (config `replyPrefixes`). A refused address gets no publish at all: an
 * error sent elsewhere would be an answer nobody asked for.
 */
import type { IPublishPacket } from 'mqtt';
import { topicRoot, unpublishableTopicReason } from './topics.js';

export interface ReplyRoute {
  topic: string;
  /** MQTT 5 Correlation Data, returned unchanged in the response's properties. */
  correlationData?: Buffer;
  /** From the payload, returned in the response payload. */
  correlationId?: string;
}

export interface ReplyRules {
  /** Where a request that names no reply address is answered (always allowed). */
  defaultTopic: string;
  requestTopic: string;
  /** Allowed prefixes; empty: anything outside the `splitinfer/v1/` tree and `$` topics. */
  prefixes: readonly string[];
  maxTopicBytes: number;
}

/** The route for a request; `refused` says why the reply address it names may not be used (then nothing is published). */
export function replyRoute(
  packet: Pick<IPublishPacket, 'properties'>,
  payload: { replyTo?: string; correlationId?: string },
  rules: ReplyRules,
): { route: ReplyRoute; refused?: string } {
  const { responseTopic, correlationData } = packet.properties ?? {};
  const correlation = { correlationData, correlationId: payload.correlationId };
  const named = responseTopic || payload.replyTo;
  if (named === undefined) return { route: { topic: rules.defaultTopic, ...correlation } };
  const reason = replyRefusalReason(named, rules);
  if (!reason) return { route: { topic: named, ...correlation } };
  const shown = named.length > 120 ? `${named.slice(0, 120)}…` : named;
  const where = rules.prefixes.length > 0 ? `under ${rules.prefixes.map((p) => `'${p}'`).join(', ')}` : `outside ${topicRoot}/ and $ topics`;
  return { route: { topic: rules.defaultTopic, ...correlation }, refused: `reply address '${shown}' refused: ${reason} — reply to a topic of your own ${where}` };
}

function replyRefusalReason(topic: string, rules: ReplyRules): string | undefined {
  const bytes = Buffer.byteLength(topic);
  if (bytes > rules.maxTopicBytes) return `it is ${bytes} bytes, over the limit of ${rules.maxTopicBytes} (limits.maxReplyTopicBytes)`;
  const unpublishable = unpublishableTopicReason(topic);
  if (unpublishable) return unpublishable;
  if (topic === rules.requestTopic) return 'it is the request topic';
  // MQTT 5 §4.7.2: topics starting with $ are the broker's ($SYS, $share).
  if (topic.startsWith('$')) return 'it is a $ topic, reserved for the broker';
  if (rules.prefixes.length > 0) return rules.prefixes.some((prefix) => topic.startsWith(prefix)) ? undefined : 'it is not under a configured reply prefix (replyPrefixes)';
  if (topic.startsWith(`${topicRoot}/`) && topic !== rules.defaultTopic) return `it is in the ${topicRoot}/ tree, where devices take requests and report status`;
  return undefined;
}
