import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from '../shared/gen/grpc/health/v1/health_pb.js';
import { callUnary, clientConstructor } from '../shared/grpc-service.js';
import { openServiceChannel, type ChannelSecurity } from '../shared/inference-client.js';
import { isLoopback, readPemFile } from '../shared/tls.js';

const help = `usage: splitinfer health [--address HOST:PORT] [--service NAME] [--timeout-ms N] [--tls-ca FILE] [--tls-*]

Asks a cloud tier's grpc.health.v1 Check once and prints the status. Exits 0
when it is SERVING, 1 otherwise (NOT_SERVING while draining or loading, an
unknown service, no answer). For container HEALTHCHECKs and scripts; Kubernetes
probes ask the same service natively.

options:
  --address HOST:PORT   the cloud tier (default 127.0.0.1:8001)
  --service NAME        '' (default) is the whole server; a model id asks for that model
  --timeout-ms N        give up after N ms (default 2000)
  --tls                 TLS with the system's trusted CAs (implied by any --tls-* flag)
  --tls-ca FILE         CA that signed the server's certificate
  --tls-cert FILE       client certificate, for a server that wants mutual TLS (with --tls-key)
  --tls-key FILE        client private key
  --tls-server-name N   the name the server's certificate carries, when --address differs
  --tls-no-verify       TLS without checking the server's certificate, as Kubernetes' HTTPS
                        probes do; only to a loopback --address (a container checking itself)

Health answers without an API key unless the cloud's auth sets openHealth: false.
`;

export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      address: { type: 'string', default: '127.0.0.1:8001' },
      service: { type: 'string', default: '' },
      'timeout-ms': { type: 'string', default: '2000' },
      tls: { type: 'boolean' },
      'tls-ca': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-server-name': { type: 'string' },
      'tls-no-verify': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(help);
    return 0;
  }
  const timeoutMs = Number(values['timeout-ms']);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new Error(`--timeout-ms: '${values['timeout-ms']}' is not a positive whole number of milliseconds`);
  const tlsFlags = { ca: values['tls-ca'], cert: values['tls-cert'], key: values['tls-key'], serverName: values['tls-server-name'] };
  const wantsTls = values.tls === true || Object.values(tlsFlags).some((v) => v !== undefined);
  const { address, service } = values;
  const noVerify = values['tls-no-verify'] === true;
  if (noVerify && !isLoopback(address)) throw new Error(`--tls-no-verify: ${address} is not a loopback address — an unverified certificate proves nothing about a remote server; pass --tls-ca FILE instead`);
  const security: ChannelSecurity = wantsTls || noVerify ? { tls: tlsFlags } : {};
  const channel = noVerify ? unverifiedChannel(address, security) : openServiceChannel(Health, address, {}, security);
  const subject = service ? `service '${service}' at ${address}` : address;
  try {
    const { status } = await callUnary(channel, Health.method.check, { service }, { deadline: Date.now() + timeoutMs });
    console.log(`${subject}: ${ServingStatus[status]}`);
    return status === ServingStatus.SERVING ? 0 : 1;
  } catch (err) {
    const failure = err as grpc.ServiceError;
    const reason = failure.code === grpc.status.NOT_FOUND ? failure.details : `${grpc.status[failure.code] ?? 'error'}: ${failure.details ?? failure.message}`;
    console.log(`${subject}: no health answer (${reason}) — is splitinfer cloud listening there, over ${security.tls ? 'TLS' : 'plaintext'} as asked?`);
    return 1;
  } finally {
    channel.close();
  }
}

/** TLS that accepts any certificate the server shows (loopback only, checked above); a client certificate still goes along for mutual TLS. */
function unverifiedChannel(address: string, security: ChannelSecurity): grpc.Client {
  const { cert, key } = security.tls ?? {};
  if (Boolean(cert) !== Boolean(key)) throw new Error('--tls-cert and --tls-key: set both or neither');
  const credentials = grpc.credentials.createSsl(null, key ? readPemFile(key, '--tls-key') : null, cert ? readPemFile(cert, '--tls-cert') : null, {
    rejectUnauthorized: false,
    checkServerIdentity: () => undefined,
  });
  const Client = clientConstructor(Health);
  return new Client(address, credentials);
}
