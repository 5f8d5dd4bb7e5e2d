/**
 * A real redis-server (Debian's redis-server package) on a free loopback
 * port with its own temporary folder, nothing saved to disk, memory bounded
 * with an LRU policy as the README tells operators. `kill` stops it the hard
 * way (SIGKILL, as a crashed or unplugged Redis), `freeze` makes it hang;
 * `start` brings it back on
 * the same port, empty.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freeLoopbackPort } from '../../edge/local-stack.js';
import { findProgram } from './mqtt.js';

export const redisMissing: string | undefined = findProgram('redis-server') ? undefined : 'redis-server is not installed (apt-get install redis-server)';

export interface TestRedis {
  url: string;
  port: number;
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT: a Redis that holds connections and answers nothing (overloaded, or a network black hole). */
  freeze(): void;
  thaw(): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<TestRedis> {
  const program = findProgram('redis-server');
  if (!program) throw new Error(redisMissing);
  const port = await freeLoopbackPort();
  const dir = mkdtempSync(path.join(tmpdir(), 'splitinfer-redis-'));
  let child: ChildProcess | undefined;
  const exit = async (signal: NodeJS.Signals) => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child!.once('exit', resolve));
    child.kill(signal);
    await exited;
  };
  const start = async () => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--maxmemory', '64mb', '--maxmemory-policy', 'allkeys-lru'];
    const started = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = started;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start on ${port} within 5 s: ${output}`)), 5_000);
      const read = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      };
      started.stdout!.on('data', read);
      started.stderr!.on('data', read);
      started.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with code ${code} before listening on ${port}: ${output}`));
      });
    });
    started.stdout!.resume();
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    kill: () => exit('SIGKILL'),
    freeze: () => void child?.kill('SIGSTOP'),
    thaw: () => void child?.kill('SIGCONT'),
    start,
    async stop() {
      await exit('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

