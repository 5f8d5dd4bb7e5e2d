/**
 * The cloud tier's transport: TLS from `tls.cert` / `tls.key`, mutual TLS
 * when `tls.clientCa` names the CA that signs the clients (a client without a
 * certificate it signed fails the handshake), and plaintext only on a
 * loopback address or with an explicit `insecure: true`.
 */
import * as grpc from '@grpc/grpc-js';
import { isLoopback, readPemFile } from '../shared/tls.js';
import type { CloudConfig } from './config.js';

export interface ServerTransport {
  credentials: grpc.ServerCredentials;
  /** For the start-up log. */
  description: string;
  /** Client certificates are asked for and verified. */
  clientCertificates: boolean;
  /** Plaintext reachable from other machines (insecure: true): worth a warning at start. */
  exposed: boolean;
}

export function serverTransport(config: Pick<CloudConfig, 'host' | 'insecure' | 'tls'>): ServerTransport {
  const { cert, key, clientCa } = config.tls;
  if (Boolean(cert) !== Boolean(key)) throw new Error('tls.cert and tls.key go together (--tls-cert FILE --tls-key FILE): set both or neither');
  if (!cert) {
    if (clientCa) throw new Error('tls.clientCa (--tls-client-ca) needs the server certificate too: set tls.cert and tls.key');
    if (isLoopback(config.host)) return { credentials: grpc.ServerCredentials.createInsecure(), description: 'plaintext (loopback only)', clientCertificates: false, exposed: false };
    if (!config.insecure) {
      throw new Error(
        `refusing plaintext gRPC on ${config.host}, which is not a loopback address: pass --tls-cert FILE --tls-key FILE (config tls.cert, tls.key), ` +
          'or --insecure (config insecure: true) when something in front of this server encrypts the traffic, or --host 127.0.0.1 for local use',
      );
    }
    return { credentials: grpc.ServerCredentials.createInsecure(), description: `plaintext on ${config.host} (insecure: true; traffic and API keys are not encrypted)`, clientCertificates: false, exposed: true };
  }
  const credentials = grpc.ServerCredentials.createSsl(
    clientCa ? readPemFile(clientCa, 'tls.clientCa') : null,
    [{ cert_chain: readPemFile(cert, 'tls.cert'), private_key: readPemFile(key, 'tls.key') }],
    Boolean(clientCa),
  );
  return { credentials, description: clientCa ? 'mutual TLS (client certificates required)' : 'TLS', clientCertificates: Boolean(clientCa), exposed: false };
}
