/**
 * The edge agent as a real `splitinfer edge` child process, so a test or
 * benchmark can SIGKILL it mid-request, SIGTERM it, and start it again on the
 * same state folder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stopChild } from '../../edge/local-stack.js';
import { packageRoot } from '../../shared/paths.js';
import { connectClient, MessageCollector, type TestBroker } from './mqtt.js';

const cli = path.join(packageRoot, 'dist', 'shared', 'cli.js');

export interface EdgeChildOptions {
  broker: Pick<TestBroker, 'url' | 'protocolVersion'>;
  deviceId: string;
  cloud: string;
  stateDir: string;
  /** More edge config (limits, delivery, …), written to a config file in the state folder. */
  config?: Record<string, unknown>;
  /** Where its stdout and stderr go; default nowhere. */
  log?: NodeJS.WritableStream;
}

export interface EdgeChild {
  process: ChildProcess;
  /** Resolves with the exit code or signal. */
  exited: Promise<number | string | null>;
  kill(signal: NodeJS.Signals): Promise<number | string | null>;
}

/** Starts the agent and resolves once it publishes `online` (a live message, not the retained one of an earlier run). */
export async function startEdgeChild(options: EdgeChildOptions): Promise<EdgeChild> {
  mkdirSync(options.stateDir, { recursive: true });
  const configFile = path.join(options.stateDir, 'edge-config.json');
  writeFileSync(configFile, JSON.stringify(options.config ?? {}));
  const watcher = await connectClient(options.broker);
  try {
    const status = await MessageCollector.subscribe(watcher, `splitinfer/v1/${options.deviceId}/status`);
    const args = [cli, 'edge', '--config', configFile, '--broker', options.broker.url, '--protocol', String(options.broker.protocolVersion)];
    args.push('--device-id', options.deviceId, '--cloud', options.cloud, '--state-dir', options.stateDir);
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SPLITINFER_LOG_LEVEL: process.env.SPLITINFER_LOG_LEVEL ?? 'warn' } });
    if (options.log) {
      child.stdout!.pipe(options.log, { end: false });
      child.stderr!.pipe(options.log, { end: false });
    } else {
      child.stdout!.resume();
      child.stderr!.resume();
    }
    const exited = new Promise<number | string | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
    const online = status.waitFor((m) => m.payload.toString() === 'online' && !m.packet.retain, 120_000, 'the agent online');
    const early = exited.then((code) => Promise.reject(new Error(`the agent exited (${code}) before it was online`)));
    await Promise.race([online, early]);
    early.catch(() => undefined);
    return {
      process: child,
      exited,
      async kill(signal) {
        await stopChild(child, signal, 30_000);
        return exited;
      },
    };
  } finally {
    await watcher.endAsync(true);
  }
}
