import * as grpc from '@grpc/grpc-js';
import { loadCloudConfig, type CloudConfig } from '../../cloud/config.js';
import { startCloudServer, type CloudServer } from '../../cloud/server.js';
import { GRPCInferenceService } from '../../shared/gen/inference/grpc_service_pb.js';
import { clientConstructor } from '../../shared/grpc-service.js';
import { createLogger, type Logger } from '../../shared/log.js';

/** A real cloud tier on a free loopback port, with its metrics endpoint on another free port. */
export async function startTestCloud(
  overrides: Record<string, unknown> = {},
  log: Logger = createLogger('test-cloud', process.env.SPLITINFER_LOG_LEVEL ?? 'silent'),
): Promise<{ server: CloudServer; config: CloudConfig; address: string }> {
  const config = loadCloudConfig(undefined, { host: '127.0.0.1', port: 0, metricsPort: 0, metricsHost: '127.0.0.1', intraOpThreads: 1, ...overrides });
  const server = await startCloudServer(config, log);
  return { server, config, address: `127.0.0.1:${server.port}` };
}

export function inferenceClient(address: string, options: grpc.ClientOptions = {}): grpc.Client {
  const Client = clientConstructor(GRPCInferenceService);
  return new Client(address, grpc.credentials.createInsecure(), options);
}
