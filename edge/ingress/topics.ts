/** Topic layout of one device (ARCHITECTURE.md, "Device ↔ world: MQTT"). */
export const topicRoot = 'splitinfer/v1';

export interface DeviceTopics {
  /** Requests in (QoS 1). */
  req: string;
  /** Responses out when the request names no reply topic. */
  res: string;
  /** Retained `online` / `offline`; `offline` is also the last will. */
  status: string;
  /** Periodic device load and request counts. */
  telemetry: string;
}

export function deviceTopics(deviceId: string): DeviceTopics {
  const base = `${topicRoot}/${deviceId}`;
  return { req: `${base}/req`, res: `${base}/res`, status: `${base}/status`, telemetry: `${base}/telemetry` };
}

/** Why `topic` cannot be published to (MQTT 3.1.1 §4.7: no wildcards, not empty, no NUL), or undefined if it can. */
export function unpublishableTopicReason(topic: string): string | undefined {
  if (topic.length === 0) return 'it is empty';
  if (/[+#]/.test(topic)) return 'it contains a wildcard (+ or #)';
  if (topic.includes('\u0000')) return 'it contains a NUL character';
  if (Buffer.byteLength(topic) > 65_535) return 'it is longer than 65535 bytes';
  return undefined;
}
