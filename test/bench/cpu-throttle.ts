/**
 * A userspace CPU quota (the container has no cgroup CPU controller to lend
 * us): lets process `pid` run for `dutyShare` of every `periodMs` and holds
 * it with SIGSTOP for the rest, so a 0.25 duty makes it about 4× slower.
 * SIGSTOP freezes every thread of the process (ORT workers, libvips, libuv),
 * as a slower CPU would slow all of them.
 *
 * Run as its own process (policy.ts starts it), so the benchmark's event
 * loop cannot stretch the duty cycle. The loop blocks in Atomics.wait, which
 * sleeps with sub-millisecond precision; it ends when the target or the
 * parent is gone. Whoever kills this process must SIGCONT the target after,
 * because it may die in the stopped half of a cycle.
 *
 * usage: node cpu-throttle.js PID DUTY_SHARE PERIOD_MS
 */
const [pidArg, dutyArg, periodArg] = process.argv.slice(2);
const pid = Number(pidArg);
const duty = Number(dutyArg);
const periodMs = Number(periodArg);
if (!Number.isInteger(pid) || !(duty > 0 && duty <= 1) || !(periodMs >= 1)) {
  console.error(`cpu-throttle: expected PID DUTY_SHARE (0 < share <= 1) PERIOD_MS (>= 1), got ${process.argv.slice(2).join(' ')}`);
  process.exit(2);
}

const parent = process.ppid;
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const sleep = (ms: number) => Atomics.wait(sleeper, 0, 0, ms);
const runMs = duty * periodMs;
const holdMs = periodMs - runMs;

function signal(name: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, name);
    return true;
  } catch {
    return false;
  }
}

function parentAlive(): boolean {
  try {
    process.kill(parent, 0);
    return true;
  } catch {
    return false;
  }
}

for (let cycle = 0; ; cycle++) {
  if (!signal('SIGCONT')) break;
  sleep(runMs);
  if (holdMs <= 0) continue;
  // Checked once a second: an orphaned throttle must not leave its target frozen.
  if (cycle % Math.ceil(1000 / periodMs) === 0 && !parentAlive()) break;
  if (!signal('SIGSTOP')) break;
  sleep(holdMs);
}
signal('SIGCONT');
