/**
 * The process's one CPU-load poller: every reader sees the same readings,
 * taken as often as the most eager one asks, so no reader's si.currentLoad()
 * window is cut short by another's.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { subscribeCpuLoad, type CpuLoad } from '../../edge/cpu-load.js';
import { DeviceLoadSampler } from '../../edge/policy/device-load.js';
import { readDeviceLoad } from '../../edge/telemetry.js';
import { createLogger } from '../../shared/log.js';

describe('CPU load poller', () => {
  test('two subscribers share one series of readings, at the shorter interval, until both leave', async () => {
    const slow: CpuLoad[] = [];
    const fast: CpuLoad[] = [];
    const a = await subscribeCpuLoad(10_000, (load) => slow.push(load));
    const b = await subscribeCpuLoad(100, (load) => fast.push(load));
    await sleep(550);
    assert.ok(fast.length >= 3, `${fast.length} readings in 550 ms at a 100 ms interval`);
    assert.deepEqual(slow.slice(-fast.length), fast, 'the slow subscriber got the same readings, not its own');
    assert.equal(a.latest(), b.latest());
    for (let i = 1; i < fast.length; i++) assert.ok(fast[i]!.at > fast[i - 1]!.at);
    a.unsubscribe();
    b.unsubscribe();
    const seen = fast.length;
    await sleep(300);
    assert.equal(fast.length, seen, 'no readings after the last subscriber left');
  });

  test("a reading covers this process's own work over the same window", async () => {
    const readings: CpuLoad[] = [];
    const subscription = await subscribeCpuLoad(400, (load) => readings.push(load));
    const until = performance.now() + 900;
    while (performance.now() < until) {
      // Keep one core busy on this thread across at least one whole window.
    }
    await sleep(450);
    subscription.unsubscribe();
    const busiest = readings.slice(1).reduce((best, r) => (r.ownBusyCores > best.ownBusyCores ? r : best));
    // Well under 1 core: on a shared test machine the spinning thread gets only its share.
    assert.ok(busiest.ownBusyCores > 0.2, `own busy cores ${busiest.ownBusyCores.toFixed(2)} while spinning`);
    assert.ok(busiest.loadPercent >= (80 * busiest.ownBusyCores) / busiest.cores, `machine load ${busiest.loadPercent} % includes our ${busiest.ownBusyCores.toFixed(2)} cores of ${busiest.cores}`);
  });

  test('telemetry and the placement policy read the same poller', async () => {
    const log = createLogger('test', 'silent');
    const readings: CpuLoad[] = [];
    const subscription = await subscribeCpuLoad(60_000, (load) => readings.push(load));
    const sampler = await DeviceLoadSampler.start({ intervalMs: 100, threads: 1, throttleTemperatureC: 200, log });
    try {
      await sleep(250);
      const newest = subscription.latest()!;
      const telemetry = await readDeviceLoad(subscription);
      assert.equal(telemetry.cpuLoadPercent, newest.loadPercent);
      assert.ok(readings.length >= 2, "the policy's 100 ms interval set the pace for the telemetry subscriber too");
      const policyPercent = sampler.current().cpuLoadPercent;
      assert.ok(readings.some((r) => r.loadPercent === policyPercent), `the policy's ${policyPercent} % is one of the shared readings`);
    } finally {
      sampler.stop();
      subscription.unsubscribe();
    }
  });
});
