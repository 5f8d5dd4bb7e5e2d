/**
 * The parts of a whole system on one machine that `splitinfer demo` starts
 * around its edge agent, and that the tests and benchmarks start the same
 * way: an embedded MQTT broker and the cloud tier as a child process (edge
 * code never loads the cloud tier; it runs the `splitinfer cloud` command).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { Aedes } from 'aedes';
import { GRPCInferenceService } from '../shared/gen/inference/grpc_service_pb.js';
import { callUnary } from '../shared/grpc-service.js';
import { InferenceClient } from '../shared/inference-client.js';
import { packageRoot } from '../shared/paths.js';

/** A loopback TCP port nothing listens on right now. */
export async function freeLoopbackPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface EmbeddedBroker {
  url: string;
  protocolVersion: 4;
  stop(): Promise<void>;
}

/** aedes (MQTT 3.1.1) on a free loopback port; Nagle off, so no answer waits for a batch. */
export async function startEmbeddedBroker(): Promise<EmbeddedBroker> {
  const broker = await Aedes.createBroker();
  const server = net.createServer({ noDelay: true }, broker.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    protocolVersion: 4,
    async stop() {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

export interface CloudChildOptions {
  /** More `splitinfer cloud` flags, e.g. ['--threads', '1']. */
  extraArgs?: string[];
  /** Starts the process; by default a plain child whose stderr is this process's (the benchmark pins it to a core and logs to a file). */
  spawn?: (command: string, args: string[], env: NodeJS.ProcessEnv) => ChildProcess;
  readyTimeoutMs?: number;
  /** Where its log went, for errors: 'its log is above', 'log: /tmp/cloud.log'. */
  logHint?: string;
  /** A loopback port to listen on (the one a stopped cloud tier had, to start it again); default a free one. */
  port?: number;
  /** The loopback address to listen on (default 127.0.0.1; any of 127/8, so replicas can share a port). */
  host?: string;
}

export interface CloudChild {
  address: string;
  pid: number;
  /** SIGTERM (the cloud tier drains), SIGKILL if it has not exited 10 s later. */
  stop(): Promise<void>;
}

const cli = path.join(packageRoot, 'dist', 'shared', 'cli.js');

/** `splitinfer cloud` on a loopback port (default a free one), resolved once ServerReady says so. */
export async function startCloudChild(options: CloudChildOptions = {}): Promise<CloudChild> {
  const { readyTimeoutMs = 120_000, logHint = 'its log is above' } = options;
  const { host = '127.0.0.1' } = options;
  const port = options.port ?? (await freeLoopbackPort());
  const args = [cli, 'cloud', '--host', host, '--port', String(port), '--metrics-port', 'off', ...(options.extraArgs ?? [])];
  const env = { ...process.env, SPLITINFER_LOG_LEVEL: process.env.SPLITINFER_LOG_LEVEL ?? 'warn' };
  const child = options.spawn ? options.spawn(process.execPath, args, env) : spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'], env });
  const stop = () => stopChild(child);
  const address = `${host}:${port}`;
  const client = new InferenceClient(address);
  try {
    for (const deadline = Date.now() + readyTimeoutMs; ; ) {
      if (child.exitCode !== null) throw new Error(`the cloud tier exited with code ${child.exitCode} while starting (${logHint})`);
      const ready = await callUnary(client.grpc, GRPCInferenceService.method.serverReady, {}, { deadline: Date.now() + 1_000 }).then(
        (r) => r.ready,
        () => false,
      );
      if (ready) return { address, pid: child.pid!, stop };
      if (Date.now() > deadline) throw new Error(`the cloud tier on ${address} was not ready within ${readyTimeoutMs / 1000} s (${logHint})`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } catch (err) {
    await stop();
    throw err;
  } finally {
    client.close();
  }
}

/** Signals a child and waits for it to exit, with SIGKILL after `graceMs`. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
