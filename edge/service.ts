/**
 * A running device: the agent, its MQTT ingress and telemetry, and when
 * configured its metrics endpoint and span export, started and stopped in
 * order. `splitinfer edge`, `splitinfer demo` and the end-to-end tests all
 * run this.
 */
import type { Server } from 'node:http';
import type { Logger } from '../shared/log.js';
import { boundPort, serveMetrics } from '../shared/metrics.js';
import { startTracing } from '../shared/tracing.js';
import { EdgeAgent } from './agent.js';
import type { EdgeConfig } from './config.js';
import { MqttIngress } from './ingress/mqtt-ingress.js';
import { createEdgeMetrics, registerEdgeState } from './metrics.js';
import { startTelemetry } from './telemetry.js';

export interface EdgeService {
  readonly agent: EdgeAgent;
  readonly ingress: MqttIngress;
  /** The Prometheus endpoint's port; -1 when it is off (config metricsPort). */
  readonly metricsPort: number;
  /** Finishes running requests, publishes retained `offline`, disconnects, closes the models. */
  close(): Promise<void>;
}

export async function startEdgeService(config: EdgeConfig, log: Logger): Promise<EdgeService> {
  const metrics = config.metricsPort >= 0 ? createEdgeMetrics(config.deviceId) : undefined;
  const tracer = await startTracing(config.tracing, log);
  const agent = await EdgeAgent.start(config, log, { metrics, tracer });
  let ingress: MqttIngress;
  let metricsServer: Server | undefined;
  try {
    ingress = await MqttIngress.start(config, agent, log.child({ component: 'mqtt' }));
    if (metrics) {
      const served = ingress;
      registerEdgeState(metrics, {
        circuit: () => agent.stats().cloud.state,
        link: () => agent.linkSnapshot(),
        inFlight: () => served.stats().inFlight,
        journal: () => served.ledger.stats(),
        ingress: () => served.stats(),
      });
      metricsServer = await serveMetrics(metrics.registry, config.metricsPort, config.metricsHost).catch(async (err: Error) => {
        await served.close(0);
        throw new Error(`cannot serve metrics on ${config.metricsHost}:${config.metricsPort}: ${err.message} — pick another metricsPort (--metrics-port)`);
      });
      log.info({ metrics: `http://${config.metricsHost}:${boundPort(metricsServer)}/metrics` }, 'serving Prometheus metrics');
    }
  } catch (err) {
    await agent.close();
    await tracer.close();
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
    metricsPort: metricsServer ? boundPort(metricsServer) : -1,
    close() {
      closed ??= (async () => {
        telemetry.stop();
        await ingress.close();
        metricsServer?.close();
        metricsServer?.closeAllConnections();
        await agent.close();
        await tracer.close();
      })();
      return closed;
    },
  };
}
