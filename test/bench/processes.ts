/**
 * The benchmark's processes: the cloud tier and the edge agent as real
 * `splitinfer` child processes, each pinned to its own core with taskset;
 * the CPU quota that makes the agent's core a slower device; and a busy loop
 * that loads the agent's core ("edge busy"). Every child is registered so an
 * interrupted run leaves nothing running (or frozen) behind.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCloudChild, stopChild } from '../../edge/local-stack.js';
import { packageRoot } from '../../shared/paths.js';
import { connectClient, findProgram, type TestBroker } from '../helpers/mqtt.js';

const cli = path.join(packageRoot, 'dist', 'shared', 'cli.js');
const throttleScript = path.join(packageRoot, 'dist', 'test', 'bench', 'cpu-throttle.js');

/** Cores: the cloud (and this process, the emulator and the broker) on one, the agent on the other. */
export interface CorePlan {
  /** Undefined when processes are not pinned. */
  cloudCore?: number;
  edgeCore?: number;
  /** Why the processes are not pinned, when they are not. */
  unpinnedReason?: string;
}

export function planCores(): CorePlan {
  const taskset = findProgram('taskset');
  const cores = os.availableParallelism();
  if (!taskset) return { unpinnedReason: 'taskset (util-linux) is not installed: processes are not pinned, so the edge/cloud ratio only comes from the CPU quota' };
  if (cores < 2) return { unpinnedReason: `only ${cores} core is available: cloud and agent share it` };
  return { cloudCore: 0, edgeCore: 1 };
}

const running = new Set<ChildProcess>();
const frozen = new Set<ChildProcess>();

/** Kills every child still running (thawing throttled ones first); for exit paths. */
export function killAllChildren(): void {
  for (const child of running) {
    if (frozen.has(child)) child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
  running.clear();
}

/** Runs a benchmark's `main`: its children die with it on SIGINT/SIGTERM or an error, and the process exits with main's code. */
export function runBenchmarkMain(main: () => Promise<number>): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killAllChildren();
      process.exit(130);
    });
  }
  main().then(
    (code) => process.exit(code),
    (err: Error) => {
      killAllChildren();
      console.error(err.stack ?? err.message);
      process.exit(1);
    },
  );
}

/**
 * Whether this process may start real-time (SCHED_FIFO) children: the
 * throttle needs it, or on a busy core its wake-ups come late and every
 * "run" slice of the agent grows by a scheduler tick (a 1/8 quota then acts
 * like 1/5).
 */
export const realtimeAvailable: boolean = findProgram('chrt') !== undefined && spawnSync('chrt', ['-f', '50', 'true']).status === 0;

/** taskset and chrt exec the command, so the child's pid is the command's own (signals reach it). */
function spawnPinned(core: number | undefined, command: string, args: string[], log: WriteStream | undefined, env: NodeJS.ProcessEnv = process.env, realtime = false, ipc = false): ChildProcess {
  let argv = [command, ...args];
  if (realtime && realtimeAvailable) argv = ['chrt', '-f', '50', ...argv];
  if (core !== undefined && findProgram('taskset')) argv = ['taskset', '-c', String(core), ...argv];
  const output = log ? 'pipe' : 'ignore';
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ipc ? ['ignore', output, output, 'ipc'] : ['ignore', output, output], env });
  if (log) {
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
  }
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

/** Pins this process (every thread) to `core`. */
export function pinSelf(core: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', ['-a', '-p', '-c', String(core), String(process.pid)], { stdio: 'ignore' });
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`taskset -a -p -c ${core} ${process.pid} exited with ${code}`))));
  });
}

export interface ChildHandle {
  pid: number;
  stop(): Promise<void>;
}

/** Where child processes write their logs (not the results folder: logs are not results). */
export function openLog(name: string): WriteStream {
  return createWriteStream(path.join(os.tmpdir(), `splitinfer-bench-${name}.log`), { flags: 'a' });
}

/** A node script of this package's dist/ as a pinned child with an IPC channel (taskset execs node, which finds the channel). */
export function startNodeChild(core: number | undefined, script: string, args: string[], log: WriteStream): ChildProcess {
  return spawnPinned(core, process.execPath, [script, ...args], log, { ...process.env, SPLITINFER_LOG_LEVEL: process.env.SPLITINFER_LOG_LEVEL ?? 'warn' }, false, true);
}

/** `splitinfer cloud` (as the demo starts it) with one ORT thread, pinned, logging to `log`; `models`: only these (default all). */
export async function startCloudTier(core: number | undefined, log: WriteStream, models?: readonly string[]): Promise<ChildHandle & { address: string }> {
  return startCloudChild({
    extraArgs: ['--threads', '1', ...(models ? ['--models', models.join(',')] : [])],
    spawn: (command, args, env) => spawnPinned(core, command, args, log, env),
    readyTimeoutMs: 180_000,
    logHint: `log: ${log.path}`,
  });
}

export interface AgentOptions {
  core: number | undefined;
  broker: TestBroker;
  deviceId: string;
  configFile: string;
  /** Share of each period the agent may run (1 = no quota). */
  dutyShare: number;
  throttlePeriodMs: number;
  throttleCore: number | undefined;
  log: WriteStream;
}

/**
 * `splitinfer edge` pinned to the edge core and throttled from its first
 * instruction (so its warm-up measures the slow device, as on a real one);
 * resolves once it publishes `online`.
 */
export async function startAgent(options: AgentOptions): Promise<ChildHandle> {
  const { broker, deviceId } = options;
  const watcher = await connectClient(broker);
  const statusTopic = `splitinfer/v1/${deviceId}/status`;
  await watcher.subscribeAsync(statusTopic, { qos: 1 });
  const protocol = String(broker.protocolVersion);
  const args = [cli, 'edge', '--broker', broker.url, '--protocol', protocol, '--device-id', deviceId, '--config', options.configFile];
  const child = spawnPinned(options.core, process.execPath, args, options.log, { ...process.env, SPLITINFER_LOG_LEVEL: 'warn' });
  const unthrottle = options.dutyShare < 1 ? throttleChild(child, options.dutyShare, options.throttlePeriodMs, options.throttleCore, options.log) : undefined;
  const stop = async () => {
    await unthrottle?.();
    await stopChild(child);
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`agent ${deviceId} did not publish 'online' within 300 s (log: ${options.log.path})`)), 300_000);
      const onMessage = (topic: string, payload: Buffer) => topic === statusTopic && payload.toString() === 'online' && done();
      const onExit = (code: number | null) => done(new Error(`the agent exited with code ${code} while starting (log: ${options.log.path})`));
      const done = (err?: Error) => {
        clearTimeout(timer);
        watcher.off('message', onMessage);
        child.off('exit', onExit);
        if (err) reject(err);
        else resolve();
      };
      watcher.on('message', onMessage);
      child.once('exit', onExit);
    });
    return { pid: child.pid!, stop };
  } catch (err) {
    await stop();
    throw err;
  } finally {
    await watcher.endAsync(true);
  }
}

/** Holds `child` to `dutyShare` of every `periodMs` (cpu-throttle.js on `core`); the returned function ends the quota and thaws it. */
export function throttleChild(child: ChildProcess, dutyShare: number, periodMs: number, core: number | undefined, log: WriteStream): () => Promise<void> {
  frozen.add(child);
  const throttle = spawnPinned(core, process.execPath, [throttleScript, String(child.pid), String(dutyShare), String(periodMs)], log, process.env, true);
  return async () => {
    await stopChild(throttle, 'SIGKILL');
    child.kill('SIGCONT');
    frozen.delete(child);
  };
}

/** A process spinning on `core`, so the agent gets about half of it while both want it. */
export function startBusyLoop(core: number | undefined): ChildHandle {
  const child = spawnPinned(core, process.execPath, ['-e', 'for (;;) {}'], undefined);
  return { pid: child.pid!, stop: () => stopChild(child, 'SIGKILL') };
}
