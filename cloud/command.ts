import { parseArgs } from 'node:util';
import { createLogger } from '../shared/log.js';
import { loadCloudConfig, type CloudConfig } from './config.js';
import { startCloudServer } from './server.js';

const help = `usage: splitinfer cloud [options]

Runs the KServe v2 gRPC inference server (GRPCInferenceService + grpc.health.v1)
for every model in the catalog.

options:
  --config FILE            YAML or JSON config (flags override it)
  --host ADDR              listen address (default 127.0.0.1; 0.0.0.0 for every interface)
  --port N                 gRPC port (default 8001; 0 picks a free one)
  --tls-cert FILE          server certificate (PEM); with --tls-key, serves TLS
  --tls-key FILE           server private key (PEM)
  --tls-client-ca FILE     CA that signs client certificates: mutual TLS, clients without one are refused
  --insecure               allow plaintext on a non-loopback --host (something in front encrypts)
  --metrics-port N|off     Prometheus /metrics port (default 8002; 0 picks one, off disables)
  --metrics-host ADDR      /metrics listen address (default 127.0.0.1)
  --providers LIST         execution providers by preference, e.g. cuda,cpu (default cpu)
  --threads N              ORT intra-op threads per session (default: all cores)
  --models LIST            catalog model ids to serve (default: all)
  --max-message-bytes N    largest gRPC message in either direction (default 32 MiB)
  --max-queue N            requests waiting per model before RESOURCE_EXHAUSTED (default 64)
  --sequence-idle-ms N     free a video sequence's state after N ms without a chunk (default 30000)
  --max-sequences N        video sequences open at once before RESOURCE_EXHAUSTED (default 1024)
  --batch LIST             dynamic batching per model: MODEL=MAX_BATCH[:DELAY_US],… e.g.
                           image-encoder=8:2000 (more knobs in the config's batching section)
  --cache-bytes N          in-process response cache of N bytes (default 0: off)
  --cache redis://HOST:PORT[/DB]
                           response cache shared by every replica, in Redis (behind the
                           in-process one when --cache-bytes is set too)
`;

export async function main(args: string[]): Promise<number> {
  const config = cloudConfigFromArgs(args);
  if (!config) {
    console.log(help);
    return 0;
  }
  const log = createLogger('cloud');
  const server = await startCloudServer(config, log);
  const { transport, auth, exposed } = server.security;
  log[exposed ? 'warn' : 'info'](
    { port: server.port, metricsPort: server.metricsPort, models: server.repository.names(), transport, auth },
    `splitinfer cloud listening on ${config.host}:${server.port} (${transport}; auth ${auth})`,
  );
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'draining: health NOT_SERVING, finishing in-flight requests');
      server.drain(config.drainTimeoutMs).then(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  log.info('stopped');
  return 0;
}

/** The config `splitinfer cloud ARGS` would run with (the deploy tests read image and manifest arguments through it); undefined for --help. */
export function cloudConfigFromArgs(args: string[]): CloudConfig | undefined {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-client-ca': { type: 'string' },
      insecure: { type: 'boolean' },
      'metrics-port': { type: 'string' },
      'metrics-host': { type: 'string' },
      providers: { type: 'string' },
      threads: { type: 'string' },
      models: { type: 'string' },
      'max-message-bytes': { type: 'string' },
      'max-queue': { type: 'string' },
      'sequence-idle-ms': { type: 'string' },
      'max-sequences': { type: 'string' },
      batch: { type: 'string' },
      'cache-bytes': { type: 'string' },
      cache: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return undefined;
  const list = (s: string | undefined) => s?.split(',').map((x) => x.trim()).filter(Boolean);
  return loadCloudConfig(values.config, {
    host: values.host,
    port: values.port,
    insecure: values.insecure,
    tls: { cert: values['tls-cert'], key: values['tls-key'], clientCa: values['tls-client-ca'] },
    metricsPort: values['metrics-port'] === 'off' ? -1 : values['metrics-port'],
    metricsHost: values['metrics-host'],
    providers: list(values.providers),
    intraOpThreads: values.threads,
    models: list(values.models),
    limits: { maxMessageBytes: values['max-message-bytes'], maxQueuePerModel: values['max-queue'] },
    sequences: { idleTimeoutMs: values['sequence-idle-ms'], maxSequences: values['max-sequences'] },
    batching: values.batch === undefined ? undefined : parseBatchFlag(values.batch),
    cache: { bytes: values['cache-bytes'], redis: { url: values.cache } },
  });
}

/** `image-encoder=8:2000,text-intent=16` → { 'image-encoder': { maxBatchSize: 8, maxQueueDelayUs: 2000 }, … } (the schema fills the rest). */
export function parseBatchFlag(flag: string): Record<string, { maxBatchSize: string; maxQueueDelayUs?: string }> {
  const out: Record<string, { maxBatchSize: string; maxQueueDelayUs?: string }> = {};
  for (const item of flag.split(',').map((x) => x.trim()).filter(Boolean)) {
    const match = /^([^=]+)=(\d+)(?::(\d+))?$/.exec(item);
    if (!match) throw new Error(`--batch: '${item}' is not MODEL=MAX_BATCH[:DELAY_US] (e.g. image-encoder=8:2000)`);
    out[match[1]!] = { maxBatchSize: match[2]!, ...(match[3] === undefined ? {} : { maxQueueDelayUs: match[3] }) };
  }
  return out;
}
