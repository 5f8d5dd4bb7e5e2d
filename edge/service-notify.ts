/**
 * The systemd service notification protocol (sd_notify(3)) for a unit of
 * Type=notify: READY=1 once the agent serves, WATCHDOG=1 every half
 * WatchdogSec, STOPPING=1 when it drains. Only when systemd started us
 * (NOTIFY_SOCKET is set); otherwise every call does nothing.
 *
 * The protocol is one datagram on an AF_UNIX SOCK_DGRAM socket, which Node
 * cannot open (net speaks stream sockets, dgram only UDP), and the npm
 * modules that can are native builds. So each message goes through
 * `systemd-notify`, which ships with systemd: since systemd 246 it waits
 * until the manager has taken the message (BARRIER=1), so a child that
 * exits at once is still counted for this unit (NotifyAccess=all).
 */
import { execFile } from 'node:child_process';
import type { Logger } from '../shared/log.js';

export interface ServiceNotifier {
  /** The agent serves: systemd marks the unit active and starts watching the pings. */
  ready(): Promise<void>;
  /** The agent drains and stops: the pings stop with it. */
  stopping(): Promise<void>;
}

/** The watchdog ping interval systemd asks of this process: half of WATCHDOG_USEC, or undefined when none is asked. */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv = process.env, pid = process.pid): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  // WATCHDOG_PID names the process the watchdog is for; a child that inherited the variable must not ping.
  if (!Number.isFinite(usec) || usec <= 0 || (env.WATCHDOG_PID !== undefined && Number(env.WATCHDOG_PID) !== pid)) return undefined;
  return Math.max(1, Math.floor(usec / 2_000));
}

export function serviceNotifier(log: Logger, env: NodeJS.ProcessEnv = process.env): ServiceNotifier {
  if (!env.NOTIFY_SOCKET) return { ready: async () => {}, stopping: async () => {} };
  // One message at a time, in order: a WATCHDOG=1 sent before READY=1 would be dropped.
  let queue = Promise.resolve();
  const send = (...assignments: string[]) => {
    queue = queue.then(
      () =>
        new Promise<void>((resolve) => {
          execFile('systemd-notify', assignments, { env, timeout: 10_000 }, (err, _stdout, stderr) => {
            if (err) log.warn({ message: assignments.join(' '), err: (stderr || err.message).trim() }, 'systemd-notify failed: systemd may not see this state — is systemd-notify (package systemd) on PATH?');
            resolve();
          });
        }),
    );
    return queue;
  };
  let watchdog: NodeJS.Timeout | undefined;
  return {
    async ready() {
      await send('READY=1', 'STATUS=serving');
      const intervalMs = watchdogIntervalMs(env);
      if (intervalMs !== undefined) {
        watchdog = setInterval(() => void send('WATCHDOG=1'), intervalMs);
        watchdog.unref();
      }
    },
    async stopping() {
      clearInterval(watchdog);
      await send('STOPPING=1', 'STATUS=draining running requests');
    },
  };
}
