/**
 * Who is calling, and may they use this model. A caller is identified by an
 * API key (`authorization: Bearer <key>`) or, over mutual TLS, by its client
 * certificate's subject CN; each maps to a tenant in config. Keys are held
 * only as sha256 hashes and compared in constant time. With `required`, an
 * unidentified call gets UNAUTHENTICATED before any message is read; a known
 * tenant calling a model outside its allow-list gets PERMISSION_DENIED.
 */
import { timingSafeEqual } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { SchemaObject } from 'ajv';
import { InferError } from '../shared/errors.js';
import { Health } from '../shared/gen/grpc/health/v1/health_pb.js';
import { GRPCInferenceService } from '../shared/gen/inference/grpc_service_pb.js';
import { readSecret, sha256Hex } from '../shared/secrets.js';
import { tenantSettingsProperties, type TenantSettings } from './tenants.js';

export interface ApiKeyConfig {
  tenant: string;
  /** Exactly one of: a file holding the key, an environment variable holding it, or the key's sha256 (hex). */
  keyFile?: string;
  keyEnv?: string;
  sha256?: string;
}

export interface AuthConfig {
  /** Every call (but the open health ones) must carry a known API key or client certificate. */
  required: boolean;
  /** grpc.health.v1, ServerLive and ServerReady answer without credentials (probes, load balancers). */
  openHealth: boolean;
  apiKeys: ApiKeyConfig[];
  /** Client certificate subject CN → tenant (needs tls.clientCa). */
  mtlsTenants: Record<string, string>;
  /** Per tenant, the model names it may call (a tenant not listed, or with an empty list, may call any), and its quotas and shares (tenants.ts). */
  tenants: Record<string, TenantSettings>;
  /** The tenant an unidentified call counts against (its quotas may be set under `tenants`). */
  defaultTenant: string;
}

export const authConfigSchema: SchemaObject = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    required: { type: 'boolean', default: false },
    openHealth: { type: 'boolean', default: true },
    apiKeys: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['tenant'],
        properties: {
          tenant: { type: 'string', minLength: 1 },
          keyFile: { type: 'string', minLength: 1 },
          keyEnv: { type: 'string', minLength: 1 },
          sha256: { type: 'string', pattern: '^[0-9a-fA-F]{64}$' },
        },
        oneOf: [{ required: ['keyFile'] }, { required: ['keyEnv'] }, { required: ['sha256'] }],
      },
    },
    mtlsTenants: { type: 'object', additionalProperties: { type: 'string', minLength: 1 }, default: {} },
    tenants: {
      type: 'object',
      default: {},
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        properties: { models: { type: 'array', items: { type: 'string' }, default: [] }, ...tenantSettingsProperties },
      },
    },
    defaultTenant: { type: 'string', minLength: 1, default: 'default' },
  },
};

/** The caller of one call; `tenant` is undefined for an anonymous call (allowed only when auth is not required). */
export interface Identity {
  tenant?: string;
  /** How it was identified, for logs: 'api-key', 'certificate CN=cam-7', 'anonymous'. */
  via: string;
}

/** What a server call offers to identify its caller (grpc-js's AuthContext, as far as it is used). */
export interface CallerOf {
  metadata: grpc.Metadata;
  getAuthContext(): { sslPeerCertificate?: { subject?: object } } | null;
}

/** Paths that answer without credentials when `openHealth` is set. */
const healthPaths = new Set([
  ...Health.methods.map((m) => `/${Health.typeName}/${m.name}`),
  ...[GRPCInferenceService.method.serverLive, GRPCInferenceService.method.serverReady].map((m) => `/${GRPCInferenceService.typeName}/${m.name}`),
]);

export class CloudAuth {
  private readonly keys: { hash: Buffer; tenant: string }[];

  /** Reads every key file and variable now, so a missing one stops start-up instead of failing calls. */
  constructor(
    private readonly config: AuthConfig,
    clientCertificates: boolean,
  ) {
    this.keys = config.apiKeys.map((entry, i) => {
      const setting = `auth.apiKeys[${i}] (tenant ${entry.tenant})`;
      const hash = entry.sha256 ?? sha256Hex(readSecret({ file: entry.keyFile ?? '', env: entry.keyEnv ?? '' }, setting)!);
      return { hash: Buffer.from(hash.toLowerCase(), 'hex'), tenant: entry.tenant };
    });
    if (Object.keys(config.mtlsTenants).length > 0 && !clientCertificates) {
      throw new Error('auth.mtlsTenants maps client certificates, but the server asks for none — set tls.clientCa (--tls-client-ca FILE) to the CA that signs the clients');
    }
    if (config.required && this.keys.length === 0 && Object.keys(config.mtlsTenants).length === 0) {
      throw new Error('auth.required is true, but no auth.apiKeys or auth.mtlsTenants are configured, so no call could succeed — add keys or certificate identities');
    }
  }

  /** Whether any credential is configured or required (off: any caller may call any model). */
  get enabled(): boolean {
    return this.config.required || this.keys.length > 0 || Object.keys(this.config.mtlsTenants).length > 0;
  }

  /** For the start-up log: never a key, only counts. */
  describe(): string {
    if (!this.enabled) return 'off (any caller may call any model)';
    const how = `${this.keys.length} API keys, ${Object.keys(this.config.mtlsTenants).length} certificate identities`;
    return `${this.config.required ? 'required' : 'optional'} (${how}${this.config.openHealth ? '; health open' : ''})`;
  }

  /** Who made a call; throws UNAUTHENTICATED for unknown credentials, or for none when auth is required. */
  identify(metadata: grpc.Metadata, peerCommonName: string | undefined): Identity {
    const header = metadata.get('authorization')[0];
    if (header !== undefined) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(String(header));
      if (!match) throw new InferError('UNAUTHENTICATED', "the authorization metadata is not 'Bearer <API key>'");
      const tenant = this.tenantOfKey(match[1]!);
      if (!tenant) throw new InferError('UNAUTHENTICATED', 'the API key is not recognised — check the key the client sends (cloud.apiKeyFile on the edge)');
      return { tenant, via: 'api-key' };
    }
    if (peerCommonName !== undefined) {
      const tenant = this.config.mtlsTenants[peerCommonName];
      if (tenant) return { tenant, via: `certificate CN=${peerCommonName}` };
      if (this.config.required) throw new InferError('UNAUTHENTICATED', `the client certificate CN=${peerCommonName} maps to no tenant (auth.mtlsTenants)`);
    }
    if (this.config.required) throw new InferError('UNAUTHENTICATED', 'no credentials: send authorization: Bearer <API key>, or connect with a client certificate the server maps to a tenant');
    return { via: 'anonymous' };
  }

  /** `identify` for a call the interceptor already let through. */
  identifyCall(call: CallerOf): Identity {
    return this.identify(call.metadata, peerCommonName(call.getAuthContext()));
  }

  /** Throws PERMISSION_DENIED when the caller's tenant may not use `model`. */
  authorize(identity: Identity, model: string): void {
    if (identity.tenant === undefined) return;
    const allowed = this.config.tenants[identity.tenant]?.models ?? [];
    if (allowed.length > 0 && !allowed.includes(model)) {
      throw new InferError('PERMISSION_DENIED', `tenant ${identity.tenant} may not use model '${model}' (allowed: ${allowed.join(', ')})`);
    }
  }

  /**
   * The grpc-js server interceptors: one that refuses unidentified calls
   * before any message is read, or none while auth is off (there is nothing
   * to check; the services still refuse credentials they cannot verify).
   */
  interceptors(): grpc.ServerInterceptor[] {
    return this.enabled ? [this.interceptor()] : [];
  }

  private interceptor(): grpc.ServerInterceptor {
    return (method, call) =>
      new grpc.ServerInterceptingCall(call, {
        start: (next) =>
          next({
            onReceiveMetadata: (metadata, proceed) => {
              if (this.config.openHealth && healthPaths.has(method.path)) return proceed(metadata);
              try {
                this.identify(metadata, peerCommonName(call.getAuthContext()));
                proceed(metadata);
              } catch (err) {
                call.sendStatus({ code: grpc.status.UNAUTHENTICATED, details: (err as Error).message });
              }
            },
          }),
      });
  }

  /** The sha256 of the presented key against every stored hash, without stopping at a match. */
  private tenantOfKey(key: string): string | undefined {
    const presented = Buffer.from(sha256Hex(key), 'hex');
    let tenant: string | undefined;
    for (const entry of this.keys) if (timingSafeEqual(presented, entry.hash) && tenant === undefined) tenant = entry.tenant;
    return tenant;
  }
}

/** The subject CN of a verified client certificate, when the connection has one. */
function peerCommonName(context: ReturnType<CallerOf['getAuthContext']>): string | undefined {
  const cn = (context?.sslPeerCertificate?.subject as { CN?: unknown } | undefined)?.CN;
  return typeof cn === 'string' && cn ? cn : undefined;
}
