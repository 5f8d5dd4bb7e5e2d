/**
 * Where the agent keeps its state and how it keeps its promise to answer
 * every accepted request once (delivery-ledger.ts, request-delivery.ts).
 */
import { accessSync, constants, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface DeliveryConfig {
  /** Bytes of unanswered requests and stored answers the journal keeps (answers are evicted oldest first); the file stays under about twice this. */
  journalMaxBytes: number;
  /** How long an answer is kept for a repeat of its request id. */
  answerRetentionMs: number;
  /** On SIGTERM, how long running requests may take to finish; those still running then are run again at the next start. */
  drainTimeoutMs: number;
  /**
   * QoS of answers: 2 (the broker delivers each answer once, even when the
   * agent sends it again after a crash or a reconnect: outgoing-store.ts);
   * 1 for brokers without QoS 2 (AWS IoT Core), where such a resend reaches
   * the requester twice.
   */
  answerQos: 1 | 2;
}

export const stateDirSchema = { type: 'string', default: '' };

export const deliveryConfigSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    journalMaxBytes: { type: 'integer', minimum: 1024 * 1024, default: 256 * 1024 * 1024 },
    answerRetentionMs: { type: 'integer', minimum: 1_000, default: 86_400_000 },
    drainTimeoutMs: { type: 'integer', minimum: 0, default: 10_000 },
    answerQos: { type: 'integer', enum: [1, 2], default: 2 },
  },
};

/** Every unanswered request fits at once, so flow control, not the journal, bounds what runs. */
export function checkDeliveryConfig(delivery: DeliveryConfig, maxPayloadBytes: number): void {
  if (delivery.journalMaxBytes < 2 * maxPayloadBytes) {
    throw new Error(`config delivery.journalMaxBytes (${delivery.journalMaxBytes}) is under twice limits.maxPayloadBytes (${maxPayloadBytes}) — raise it, or lower limits.maxPayloadBytes`);
  }
}

const systemStateDir = '/var/lib/splitinfer';

/**
 * The configured state folder, or by default the one systemd made for the
 * unit ($STATE_DIRECTORY), else /var/lib/splitinfer where this user may write
 * it (a system install), else the user's state folder
 * ($XDG_STATE_HOME or ~/.local/state, /splitinfer). The same folder must be
 * used across restarts: the journal in it is what a restart answers from.
 */
export function resolveStateDir(configured: string): string {
  if (configured) return path.resolve(configured);
  const fromSystemd = process.env.STATE_DIRECTORY?.split(':')[0];
  if (fromSystemd) return path.resolve(fromSystemd);
  if (writable(systemStateDir) || (!exists(systemStateDir) && writable(path.dirname(systemStateDir)))) return systemStateDir;
  const base = process.env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
  const dir = path.join(base, 'splitinfer');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function exists(dir: string): boolean {
  try {
    accessSync(dir);
    return true;
  } catch {
    return false;
  }
}
