/**
 * A stand-in for systemd's notification socket: a unix datagram socket
 * (python3 opens it; Node's net and dgram cannot) that collects each
 * datagram as one message, and answers systemd-notify's BARRIER=1 the way
 * systemd does, by closing the file descriptor that comes with it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { findProgram } from './mqtt.js';

export const notifySocketMissing: string | undefined = !findProgram('python3')
  ? 'python3 is not installed (it opens the test notification socket)'
  : !findProgram('systemd-notify')
    ? 'systemd-notify is not installed (apt-get install systemd)'
    : undefined;

const server = `
import json, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("listening", flush=True)
while True:
    data, fds, _, _ = socket.recv_fds(s, 65536, 16)
    for fd in fds:
        os.close(fd)
    print(json.dumps(data.decode()), flush=True)
`;

export interface NotifySocket {
  path: string;
  /** Every message so far, barrier messages left out. */
  messages: string[];
  /** Resolves when a message (after those already waited for) holds `text`. */
  waitFor(text: string, timeoutMs: number): Promise<string>;
  /** The messages once none has come for `quietMs`. */
  settle(quietMs: number): Promise<string[]>;
  close(): Promise<void>;
}

export async function openNotifySocket(socketPath: string): Promise<NotifySocket> {
  const child: ChildProcess = spawn('python3', ['-c', server, socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  const messages: string[] = [];
  let lastAt = Date.now();
  let waited = 0;
  const lines = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    lines.once('line', () => resolve());
    child.once('exit', (code) => reject(new Error(`the notification socket's python3 exited with ${code}`)));
  });
  lines.on('line', (line) => {
    const message = JSON.parse(line) as string;
    if (message === 'BARRIER=1') return;
    messages.push(message);
    lastAt = Date.now();
  });
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  return {
    path: socketPath,
    messages,
    async waitFor(text, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const index = messages.findIndex((m, i) => i >= waited && m.includes(text));
        if (index >= 0) {
          waited = index + 1;
          return messages[index]!;
        }
        if (Date.now() > deadline) throw new Error(`no '${text}' on the notification socket within ${timeoutMs} ms; got ${JSON.stringify(messages)}`);
        await sleep(20);
      }
    },
    async settle(quietMs) {
      while (Date.now() - lastAt < quietMs) await sleep(quietMs / 4);
      return [...messages];
    },
    async close() {
      if (child.exitCode === null) {
        child.kill();
        await new Promise((resolve) => child.once('exit', resolve));
      }
    },
  };
}
