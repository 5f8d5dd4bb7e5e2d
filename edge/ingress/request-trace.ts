/**
 * A request's trace context over MQTT: an MQTT 5 client names it in the user
 * property `traceparent` (W3C Trace Context), and gets it back in the same
 * property of its answer; a request without a valid one (and every MQTT
 * 3.1.1 request, which has no properties) starts a new trace. The agent's
 * and the cloud's log lines for the request carry it.
 */
import type { IPublishPacket } from 'mqtt';
import { formatTraceparent, traceContextOf, traceparentName } from '../../shared/trace-context.js';

export function requestTraceparent(packet: Pick<IPublishPacket, 'properties'>): string {
  const value = packet.properties?.userProperties?.[traceparentName];
  return formatTraceparent(traceContextOf(Array.isArray(value) ? value[0] : value));
}

/** The user properties of an answer to a request with this trace context. */
export function traceUserProperties(traceparent: string | undefined): { userProperties: Record<string, string> } | undefined {
  return traceparent ? { userProperties: { [traceparentName]: traceparent } } : undefined;
}
