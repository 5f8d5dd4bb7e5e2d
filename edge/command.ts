import { parseArgs } from 'node:util';
import { createLogger } from '../shared/log.js';
import { loadEdgeConfig, type EdgeConfig } from './config.js';
import { deviceTopics } from './ingress/topics.js';
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
  --cloud HOST:PORT    cloud tier (KServe v2 gRPC); dns:///name:port balances over replicas
  --policy NAME        placement strategy (config policy.strategy, default rules): rules, adaptive,
                       always-local, always-cloud, confidence, static-profile
`;

/** The edge config from a config file and the flags every edge command shares. */
export function edgeConfigFromFlags(values: { config?: string; broker?: string; protocol?: string; 'device-id'?: string; cloud?: string; policy?: string }): EdgeConfig {
  return loadEdgeConfig(values.config, {
    deviceId: values['device-id'],
    broker: { url: values.broker, protocolVersion: values.protocol === undefined ? undefined : Number(values.protocol) },
    cloud: values.cloud,
    policy: { strategy: values.policy },
  });
}

export const edgeFlags = {
  config: { type: 'string' },
  broker: { type: 'string' },
  protocol: { type: 'string' },
  'device-id': { type: 'string' },
  cloud: { type: 'string' },
  policy: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: edgeFlags });
  if (values.help) {
    console.log(help);
    return 0;
  }
  const config = edgeConfigFromFlags(values);
  const log = createLogger('edge');
  const edge = await startEdgeService(config, log);
  log.info({ deviceId: config.deviceId, topics: deviceTopics(config.deviceId), cloud: config.cloud }, `splitinfer edge serving ${config.deviceId}`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping: finishing running requests, publishing offline');
      edge.close().then(resolve, (err: Error) => {
        log.error({ err: err.message }, 'unclean stop');
        resolve();
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  log.info('stopped');
  return 0;
}
