/**
 * How long the agent waits before it connects again to the broker. A
 * connection that was up for a while is followed by a quick reconnect (a
 * broker restart, a network blip). Connections that end soon after they
 * began — above all because another client connected with the agent's
 * client id and the broker handed it the session (MQTT 5 DISCONNECT reason
 * 0x8E "Session taken over"; a 3.1.1 broker just closes the socket) — make
 * the wait grow exponentially, with jitter, so two clients with one id do
 * not take the session from each other several times a second. The agent
 * says so in its log, once per streak at warn level and then at debug.
 */
import type { IDisconnectPacket, MqttClient } from 'mqtt';
import type { Logger } from '../../shared/log.js';

export interface ReconnectBackoffOptions {
  /** Wait after a connection that lasted (and the first in a streak of short ones). */
  baseMs: number;
  maxMs: number;
  /** A connection shorter than this counts as cut off at once. */
  stableAfterMs: number;
  random?: () => number;
}

export const reconnectDefaults: ReconnectBackoffOptions = { baseMs: 1_000, maxMs: 60_000, stableAfterMs: 10_000 };

/** MQTT 5 §3.14.2.1. */
const sessionTakenOver = 0x8e;

/**
 * Sets mqtt.js's `reconnectPeriod` before each reconnect is scheduled (its own
 * 'close' listener reads it, so this one is put in front of it). Returns how
 * many connections in a row ended early, for tests and stats.
 */
export function installReconnectBackoff(client: MqttClient, clientId: string, log: Logger, options = reconnectDefaults): { readonly shortInARow: number } {
  const random = options.random ?? Math.random;
  const state = { shortInARow: 0 };
  let connectedAt: number | undefined;
  let takenOver = false;
  client.on('connect', () => {
    connectedAt = performance.now();
    takenOver = false;
  });
  client.on('disconnect', (packet: IDisconnectPacket) => {
    if (packet.reasonCode === sessionTakenOver) takenOver = true;
  });
  client.prependListener('close', () => {
    if (connectedAt === undefined) return;
    const upMs = performance.now() - connectedAt;
    connectedAt = undefined;
    if (!takenOver && upMs >= options.stableAfterMs) {
      state.shortInARow = 0;
      client.options.reconnectPeriod = options.baseMs;
      return;
    }
    state.shortInARow++;
    const ceilingMs = Math.min(options.maxMs, options.baseMs * 2 ** state.shortInARow);
    // "Equal jitter": at least half the ceiling, so the wait still grows; the rest random, so two fighters drift apart.
    const waitMs = Math.round(ceilingMs / 2 + (random() * ceilingMs) / 2);
    client.options.reconnectPeriod = waitMs;
    const why = takenOver
      ? `the broker gave this session to another client with the same client id ${clientId} (MQTT reason 0x8E, session taken over)`
      : `the broker closed the connection ${Math.round(upMs)} ms after it was made — another client may be using the client id ${clientId}, or the broker refuses something`;
    const fields = { clientId, shortInARow: state.shortInARow, reconnectInMs: waitMs, takenOver };
    if (state.shortInARow === 1 || takenOver) log.warn(fields, `${why}; reconnecting with backoff — give each device its own id (deviceId) and credentials`);
    else log.debug(fields, why);
  });
  return state;
}
