/**
 * The response cache's shared tier: Redis, read and filled by every replica
 * (ioredis). A value is the answer's protobuf bytes (ModelInferResponse
 * without id and per-run parameters), stored with a TTL; answers larger than
 * `maxEntryBytes` stay in-process only. Redis bounds its own memory
 * (`maxmemory` with an LRU policy, the operator's setting; see the README).
 *
 * Redis down or slow is a cache miss, never a failed or stalled request:
 * commands time out after `timeoutMs`, nothing queues while disconnected
 * (ioredis's offline queue is off and no command is retried), writes are not
 * awaited, and the client reconnects in the background. Failures are logged
 * as one warning per `warnEveryMs` with the count since the last one, and
 * counted in `errors`.
 */
import { Redis } from 'ioredis';
import type { Counter } from 'prom-client';
import type { Logger } from '../shared/log.js';
import { redactUrlCredentials } from '../shared/secrets.js';
import type { SharedResponseStore } from './response-cache.js';

export interface RedisCacheOptions {
  /** redis://[user:password@]host:port[/db] (rediss:// for TLS). */
  url: string;
  ttlS: number;
  maxEntryBytes: number;
  timeoutMs: number;
}

const KEY_PREFIX = 'splitinfer:response:';
const RECONNECT_MAX_MS = 2_000;
const WARN_EVERY_MS = 10_000;

export class RedisResponseStore implements SharedResponseStore {
  private readonly redis: Redis;
  private readonly where: string;
  private failuresSinceWarning = 0;
  private lastWarningAt = -Infinity;

  constructor(
    private readonly options: RedisCacheOptions,
    private readonly log: Logger,
    private readonly errors?: Counter<'operation'>,
  ) {
    this.where = redactUrlCredentials(options.url);
    this.redis = new Redis(options.url, {
      commandTimeout: options.timeoutMs,
      connectTimeout: Math.max(options.timeoutMs, 1_000),
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      retryStrategy: (attempt) => Math.min(100 * attempt, RECONNECT_MAX_MS),
      // A replica starts (and serves, uncached) while Redis is down.
      lazyConnect: false,
    });
    this.redis.on('error', (err: Error) => this.failed('connect', err));
    this.redis.on('ready', () => {
      if (this.lastWarningAt > -Infinity) this.log.info({ redis: this.where }, 'response cache: Redis is reachable again');
      this.lastWarningAt = -Infinity;
      this.failuresSinceWarning = 0;
    });
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    if (this.redis.status !== 'ready') return this.failed('get', new Error(`not connected (${this.redis.status})`));
    try {
      const value = await this.redis.getBuffer(KEY_PREFIX + key);
      return value ?? undefined;
    } catch (err) {
      return this.failed('get', err as Error);
    }
  }

  set(key: string, bytes: Uint8Array): void {
    if (bytes.byteLength > this.options.maxEntryBytes) return;
    if (this.redis.status !== 'ready') {
      this.failed('set', new Error(`not connected (${this.redis.status})`));
      return;
    }
    this.redis.set(KEY_PREFIX + key, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), 'EX', this.options.ttlS).catch((err: Error) => this.failed('set', err));
  }

  async close(): Promise<void> {
    this.redis.disconnect(false);
  }

  /** Counts a failure and warns at most once per WARN_EVERY_MS; always a miss. */
  private failed(operation: 'get' | 'set' | 'connect', err: Error): undefined {
    this.errors?.inc({ operation });
    this.failuresSinceWarning++;
    const now = performance.now();
    if (now - this.lastWarningAt >= WARN_EVERY_MS) {
      this.log.warn(
        { redis: this.where, operation, err: err.message, failures: this.failuresSinceWarning },
        `response cache: Redis at ${this.where} failed (${err.message}); answering as cache misses until it is back`,
      );
      this.lastWarningAt = now;
      this.failuresSinceWarning = 0;
    }
    return undefined;
  }
}
