import { parseArgs } from 'node:util';
import { createLogger } from '../shared/log.js';
import { loadEdgeConfig, type EdgeConfig } from './config.js';
import { deviceTopics } from './ingress/topics.js';
import { serviceNotifier } from './service-notify.js';
import { startEdgeService } from './service.js';

const help = `usage: splitinfer edge [options]

Runs the device agent: takes requests from MQTT on splitinfer/v1/<device-id>/req,
runs each modality on this device or in the cloud tier, and answers on the
request's reply topic (default splitinfer/v1/<device-id>/res).

options:
  --config FILE        YAML or JSON config (flags override it)
  --broker URL         MQTT broker, e.g. mqtt://127.0.0.1:1883 (mqtts:// for TLS)
  --protocol 5|4       MQTT 5 (default) or 4 = MQTT 3.1.1 (reply address in the payload)
  --device-id ID       names the topics and the MQTT client id (default device-1)
  --state-dir DIR      the agent's state (its request journal), the same across restarts
                       (default /var/lib/splitinfer where writable, else ~/.local/state/splitinfer)
  --cloud HOST:PORT    cloud tier (KServe v2 gRPC); dns:///name:port balances over replicas
  --cloud-tls-ca FILE  TLS to the cloud tier, its certificate verified against this CA (PEM)
  --cloud-tls-cert FILE, --cloud-tls-key FILE
                       this device's certificate and key, for a cloud tier that wants mutual TLS
  --cloud-insecure     allow plaintext to a cloud tier that is not on loopback (a trusted network)
  --policy NAME        placement strategy (config policy.strategy, default rules): rules, adaptive,
                       always-local, always-cloud, confidence, static-profile
  --metrics-port N|off Prometheus /metrics port (config metricsPort; default off, 0 picks one)
  --metrics-host ADDR  /metrics listen address (default 127.0.0.1)
`;

/** The edge config from a config file and the flags every edge command shares. */
export function edgeConfigFromFlags(values: EdgeFlagValues): EdgeConfig {
  const tlsFlags = { ca: values['cloud-tls-ca'], cert: values['cloud-tls-cert'], key: values['cloud-tls-key'] };
  return loadEdgeConfig(values.config, {
    deviceId: values['device-id'],
    stateDir: values['state-dir'],
    broker: { url: values.broker, protocolVersion: values.protocol === undefined ? undefined : Number(values.protocol) },
    cloud: {
      address: values.cloud,
      insecure: values['cloud-insecure'],
      // Any TLS flag turns TLS on; the others keep their config file values.
      tls: Object.values(tlsFlags).some((v) => v !== undefined) ? tlsFlags : undefined,
    },
    policy: { strategy: values.policy },
    metricsPort: values['metrics-port'] === 'off' ? -1 : values['metrics-port'],
    metricsHost: values['metrics-host'],
  });
}

export const edgeFlags = {
  config: { type: 'string' },
  broker: { type: 'string' },
  protocol: { type: 'string' },
  'device-id': { type: 'string' },
  'state-dir': { type: 'string' },
  cloud: { type: 'string' },
  'cloud-tls-ca': { type: 'string' },
  'cloud-tls-cert': { type: 'string' },
  'cloud-tls-key': { type: 'string' },
  'cloud-insecure': { type: 'boolean' },
  policy: { type: 'string' },
  'metrics-port': { type: 'string' },
  'metrics-host': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type EdgeFlagValues = { [K in keyof typeof edgeFlags]?: (typeof edgeFlags)[K]['type'] extends 'boolean' ? boolean : string };

export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: edgeFlags });
  if (values.help) {
    console.log(help);
    return 0;
  }
  const config = edgeConfigFromFlags(values);
  const log = createLogger('edge');
  // Listening from the start: a SIGTERM while starting stops the agent once it serves, instead of killing it mid-journal.
  const signalled = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  const edge = await startEdgeService(config, log);
  log.info({ deviceId: config.deviceId, topics: deviceTopics(config.deviceId), cloud: config.cloud.address }, `splitinfer edge serving ${config.deviceId}`);
  // Under systemd (Type=notify): active from here, watchdog pings until the drain starts.
  const notifier = serviceNotifier(log);
  await notifier.ready();
  const signal = await signalled;
  log.info({ signal }, 'stopping: no new requests acknowledged, finishing running ones (delivery.drainTimeoutMs), publishing offline');
  await Promise.all([notifier.stopping(), edge.close()]).catch((err: Error) => log.error({ err: err.message }, 'unclean stop'));
  log.info('stopped');
  return 0;
}
