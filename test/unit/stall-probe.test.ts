/**
 * The stall probe on a manual clock: a silent link with offloads in flight is
 * probed; a probe that times out reports a stall, one that answers teaches
 * the link estimator its round trip less the uplink wait.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { StallProbe } from '../../edge/offload/stall-probe.js';

function setup(options: { uploadWaitMs?: number } = {}) {
  const stream = { pendingCount: 0, sentAt: undefined as number | undefined, lastHeardAt: -Infinity, oldestPendingSentAt: () => stream.sentAt };
  const probes: number[] = [];
  const learnt: number[] = [];
  const stalls: string[] = [];
  const state = { answer: (): Promise<number> => Promise.resolve(45), active: true };
  const probe = new StallProbe(
    stream,
    { rttEstimate: () => ({ high: 40 }), uploadWaitMs: () => options.uploadWaitMs ?? 0, recordProbe: (ms) => learnt.push(ms) },
    {
      stallSilenceMs: 500,
      stallProbeSlackMs: 700,
      roundTripMs: (timeoutMs) => (probes.push(timeoutMs), state.answer()),
      stalled: (reason) => stalls.push(reason),
      active: () => state.active,
    },
  );
  return { stream, probe, probes, learnt, stalls, state };
}

describe('stall probe', () => {
  test('silence under the threshold, nothing in flight, or an open circuit send no probe', () => {
    const s = setup();
    assert.equal(s.probe.check(1_000), undefined, 'nothing in flight');
    s.stream.pendingCount = 1;
    s.stream.sentAt = 1_000;
    assert.equal(s.probe.check(1_400), undefined, 'silent for 400 ms: not yet');
    s.state.active = false;
    assert.equal(s.probe.check(5_000), undefined, 'the circuit is already open');
    assert.deepEqual(s.probes, []);
  });

  test('a probe that answers is a slow link, not a stalled one; its round trip less the uplink wait is learnt', async () => {
    const s = setup({ uploadWaitMs: 20 });
    s.stream.pendingCount = 1;
    s.stream.sentAt = 1_000;
    await s.probe.check(1_600);
    assert.deepEqual(s.probes, [20 + 40 + 700], 'uplink wait + RTT high + slack');
    assert.deepEqual(s.learnt, [25]);
    assert.deepEqual(s.stalls, []);
  });

  test('a probe that times out reports a stall naming what was waiting, unless an answer arrived meanwhile', async () => {
    const s = setup();
    s.stream.pendingCount = 2;
    s.stream.sentAt = 1_000;
    s.state.answer = () => Promise.reject(new Error('DEADLINE_EXCEEDED'));
    await s.probe.check(1_600);
    assert.equal(s.stalls.length, 1);
    assert.match(s.stalls[0]!, /^the link stalled: 2 offload\(s\) unanswered for 600 ms and no answer to a ServerLive probe within 740 ms$/);
    s.state.answer = () => {
      s.stream.lastHeardAt = 2_500;
      return Promise.reject(new Error('DEADLINE_EXCEEDED'));
    };
    await s.probe.check(2_200);
    assert.equal(s.stalls.length, 1, 'an answer arrived while probing: the link moved');
  });

  test('only one probe at a time', async () => {
    const s = setup();
    s.stream.pendingCount = 1;
    s.stream.sentAt = 0;
    let release!: (ms: number) => void;
    s.state.answer = () => new Promise((resolve) => (release = resolve));
    const first = s.probe.check(1_000);
    assert.ok(first);
    assert.equal(s.probe.check(1_100), undefined);
    release(40);
    await first;
    assert.equal(s.probes.length, 1);
  });
});
