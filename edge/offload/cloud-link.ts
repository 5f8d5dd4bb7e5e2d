/**
 * The `cloud` setting: where the cloud tier is and how to reach it safely.
 * TLS verifies the cloud's certificate (against `tls.ca`, else the system's
 * CAs) and, with `tls.cert` + `tls.key`, proves the device's identity
 * (mutual TLS). Plaintext is allowed without asking only to a loopback
 * address; anywhere else the agent refuses to start unless `insecure: true`.
 * The API key is read from a file or an environment variable, never config.
 */
import type { ChannelSecurity, ClientTls } from '../../shared/inference-client.js';
import { readSecret } from '../../shared/secrets.js';
import { isLoopback } from '../../shared/tls.js';

export interface CloudLinkConfig {
  /** host:port of the cloud tier (KServe v2 gRPC); dns:///name:port balances over every replica. */
  address: string;
  /** Absent: plaintext. Present (even empty): TLS with certificate verification. */
  tls?: ClientTls;
  /** Plaintext to a non-loopback address, accepted on purpose (a trusted network, or a proxy that encrypts). */
  insecure: boolean;
  /** The API key for the cloud tier's auth, sent as `authorization: Bearer <key>` on every call. */
  apiKeyFile: string;
  apiKeyEnv: string;
}

export const cloudLinkSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    address: { type: 'string', minLength: 1, default: '127.0.0.1:8001' },
    tls: {
      type: 'object',
      additionalProperties: false,
      properties: {
        ca: { type: 'string', default: '' },
        cert: { type: 'string', default: '' },
        key: { type: 'string', default: '' },
        serverName: { type: 'string', default: '' },
      },
    },
    insecure: { type: 'boolean', default: false },
    apiKeyFile: { type: 'string', default: '' },
    apiKeyEnv: { type: 'string', default: '' },
  },
};

/** `cloud: "host:port"` (the older form, and what `--cloud` gives) is `cloud: { address: "host:port" }`. */
export function upgradeCloudSetting(settings: Record<string, unknown>): Record<string, unknown> {
  return typeof settings.cloud === 'string' ? { ...settings, cloud: { address: settings.cloud } } : settings;
}

/** Throws, saying how to fix it, when the link would carry plaintext off this machine without `insecure: true`. */
export function checkCloudLink(link: CloudLinkConfig): void {
  if (link.tls && link.insecure) throw new Error('config cloud.insecure is true and cloud.tls is set: choose one — TLS (recommended) or plaintext');
  if (!link.tls && !link.insecure && !isLoopback(link.address)) {
    throw new Error(
      `cloud ${link.address} is not a loopback address, and plaintext gRPC would carry every offloaded input and the API key unencrypted: ` +
        'set cloud.tls.ca (--cloud-tls-ca FILE) to the CA that signed the cloud tier\'s certificate (or cloud.tls: {} for a publicly trusted one), ' +
        'or cloud.insecure: true (--cloud-insecure) to accept plaintext on a network you trust',
    );
  }
}

/** The channel's TLS files and API key; reading the key here makes a missing key file stop start-up. */
export function cloudChannelSecurity(link: CloudLinkConfig): ChannelSecurity {
  const apiKey = readSecret({ file: link.apiKeyFile, env: link.apiKeyEnv }, 'cloud.apiKeyFile / cloud.apiKeyEnv');
  return { ...(link.tls ? { tls: link.tls } : {}), ...(apiKey ? { apiKey } : {}) };
}

/** How the link is protected, for the start-up log; `exposed` when it is plaintext off this machine. */
export function describeCloudLink(link: CloudLinkConfig): { transport: string; exposed: boolean } {
  if (link.tls) return { transport: link.tls.cert ? 'mutual TLS' : 'TLS', exposed: false };
  if (isLoopback(link.address)) return { transport: 'plaintext (loopback)', exposed: false };
  return { transport: 'plaintext (cloud.insecure: true; inputs and the API key travel unencrypted)', exposed: true };
}
