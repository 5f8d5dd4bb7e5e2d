/**
 * A running device: the agent, its MQTT ingress and telemetry, started and
 * stopped in order. `splitinfer edge`, `splitinfer demo` and the end-to-end
 * tests all run this.
 */
import type { Logger } from '../shared/log.js';
import { EdgeAgent } from './agent.js';
import type { EdgeConfig } from './config.js';
import { MqttIngress } from './ingress/mqtt-ingress.js';
import { startTelemetry } from './telemetry.js';

export interface EdgeService {
  readonly agent: EdgeAgent;
  readonly ingress: MqttIngress;
  /** Finishes running requests, publishes retained `offline`, disconnects, closes the models. */
  close(): Promise<void>;
}

export async function startEdgeService(config: EdgeConfig, log: Logger): Promise<EdgeService> {
  const agent = await EdgeAgent.start(config, log);
  let ingress: MqttIngress;
  try {
    ingress = await MqttIngress.start(config, agent, log.child({ component: 'mqtt' }));
  } catch (err) {
    await agent.close();
    throw err;
  }
  const telemetry = startTelemetry({
    client: ingress.client,
    deviceId: config.deviceId,
    topic: ingress.topics.telemetry,
    intervalS: config.telemetryIntervalS,
    protocolVersion: config.broker.protocolVersion,
    requests: () => ({ agent: agent.stats(), ingress: ingress.stats() }),
    log,
  });
  let closed: Promise<void> | undefined;
  return {
    agent,
    ingress,
    close() {
      closed ??= (async () => {
        telemetry.stop();
        await ingress.close();
        await agent.close();
      })();
      return closed;
    },
  };
}
