/**
 * The circuit breaker with a probe the test controls: failures open it, a
 * stall trips it at once, a half-open probe closes it, and a probe that
 * fails fast (a dead connection) is retried at once on a fresh connection
 * while repeated fast failures back off.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CircuitBreaker } from '../../edge/offload/circuit-breaker.js';
import { createLogger } from '../../shared/log.js';

const log = createLogger('test-breaker', 'silent');
const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function setup(coolDownMs = 30) {
  const probes: { fresh: boolean; timeoutMs: number }[] = [];
  const state = { up: true, closedCalls: 0 };
  const breaker = new CircuitBreaker({ failureThreshold: 3, coolDownMs, maxCoolDownMs: 400, probeTimeoutMs: 200 }, 'cloud:1', log, {
    probe: async (timeoutMs, fresh) => {
      probes.push({ fresh, timeoutMs });
      if (!state.up) throw new Error('connect ECONNREFUSED');
    },
    closed: () => state.closedCalls++,
  });
  return { breaker, probes, state };
}

describe('circuit breaker', () => {
  test('consecutive cloud faults open it; a success in between resets the count; a probe closes it again', async (t) => {
    const { breaker, probes, state } = setup();
    t.after(() => breaker.stop());
    breaker.recordFailure('a');
    breaker.recordFailure('b');
    breaker.recordSuccess();
    breaker.recordFailure('c');
    assert.equal(breaker.health().state, 'closed');
    breaker.recordFailure('d');
    breaker.recordFailure('e');
    assert.deepEqual(breaker.health(), { state: 'open', consecutiveFailures: 3, lastError: 'e' });
    await settle(80);
    assert.deepEqual(breaker.health(), { state: 'closed', consecutiveFailures: 0 });
    assert.deepEqual(probes, [{ fresh: false, timeoutMs: 400 }], 'one probe, allowed the longest cool-down to answer');
    assert.equal(state.closedCalls, 1);
  });

  test('an unreachable server opens it at once; a stall trips it once', (t) => {
    const { breaker } = setup(10_000);
    t.after(() => breaker.stop());
    breaker.recordFailure('unreachable (refused)', true);
    assert.equal(breaker.health().state, 'open');
    assert.equal(breaker.trip('stalled'), false, 'already open');
    const other = setup(10_000);
    t.after(() => other.breaker.stop());
    assert.equal(other.breaker.trip('the link stalled'), true);
    assert.deepEqual(other.breaker.health(), { state: 'open', consecutiveFailures: 1, lastError: 'the link stalled' });
  });

  test('a probe failing fast is retried at once on a fresh connection; failing fast again, it backs off', async (t) => {
    const { breaker, probes, state } = setup(60);
    t.after(() => breaker.stop());
    state.up = false;
    await breaker.start();
    assert.equal(breaker.health().state, 'open');
    assert.match(breaker.health().lastError!, /^unreachable \(connect ECONNREFUSED\)$/);
    await settle(20);
    assert.deepEqual(probes.map((p) => p.fresh), [false, true], 'the retry came at once, on a fresh connection');
    await settle(30);
    assert.equal(probes.length, 2, 'the second fast failure waits out the cool-down');
    state.up = true;
    await settle(80);
    assert.equal(breaker.health().state, 'closed');
    assert.ok(probes.slice(1).every((p) => p.fresh), 'each probe after a fast failure starts a fresh connection (no inherited reconnect backoff)');
  });

  test('stop ends probing: a stopped breaker never closes or reopens', async () => {
    const { breaker, probes } = setup(20);
    breaker.trip('the link stalled');
    breaker.stop();
    await settle(60);
    assert.deepEqual(probes, []);
    assert.equal(breaker.trip('again'), false);
  });
});
