/**
 * How the agent proves itself to the broker and checks the broker: TLS
 * (`mqtts://`, the broker's certificate verified against `tls.ca` or the
 * system's CAs, and a client certificate when the broker wants one), and a
 * password read from a file or an environment variable so it never sits in
 * config or a flag. The logger masks any `user:pass@` in the URL.
 */
import type { IClientOptions } from 'mqtt';
import { readSecret, redactUrlCredentials } from '../../shared/secrets.js';
import { readPemFile } from '../../shared/tls.js';

export interface BrokerSecurity {
  /** PEM files; empty strings are unset. Only with an mqtts:// or wss:// URL. */
  tls?: { ca: string; cert: string; key: string };
  passwordFile: string;
  passwordEnv: string;
}

export const brokerSecuritySchema = {
  tls: {
    type: 'object',
    additionalProperties: false,
    properties: { ca: { type: 'string', default: '' }, cert: { type: 'string', default: '' }, key: { type: 'string', default: '' } },
  },
  passwordFile: { type: 'string', default: '' },
  passwordEnv: { type: 'string', default: '' },
};

type BrokerSettings = BrokerSecurity & { url: string; username: string; password: string };

/** The mqtt.js options for credentials and TLS; throws on settings that cannot work together. */
export function brokerConnectOptions(broker: BrokerSettings): Pick<IClientOptions, 'username' | 'password' | 'ca' | 'cert' | 'key' | 'rejectUnauthorized'> {
  const fromSecret = readSecret({ file: broker.passwordFile, env: broker.passwordEnv }, 'broker.passwordFile / broker.passwordEnv');
  if (fromSecret !== undefined && broker.password) throw new Error('broker.password and broker.passwordFile / passwordEnv are both set: keep one (a file or variable keeps it out of config)');
  const password = fromSecret ?? broker.password;
  if (password && !broker.username) throw new Error('broker: a password is set but broker.username is empty');
  const credentials = broker.username ? { username: broker.username, ...(password ? { password } : {}) } : {};
  const { tls } = broker;
  if (!tls) return credentials;
  if (!/^(mqtts|wss|ssl|tls):/i.test(broker.url)) throw new Error(`broker.tls is set, but ${redactUrlCredentials(broker.url)} does not use TLS — use an mqtts:// URL`);
  if (Boolean(tls.cert) !== Boolean(tls.key)) throw new Error('broker.tls.cert and broker.tls.key go together: set both or neither');
  return {
    ...credentials,
    rejectUnauthorized: true,
    ...(tls.ca ? { ca: readPemFile(tls.ca, 'broker.tls.ca') } : {}),
    ...(tls.cert ? { cert: readPemFile(tls.cert, 'broker.tls.cert'), key: readPemFile(tls.key, 'broker.tls.key') } : {}),
  };
}
