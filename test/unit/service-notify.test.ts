/**
 * edge/service-notify.ts against a real notification socket: a unix
 * datagram socket the test opens (with python3, since Node cannot), read
 * the way systemd reads it. The agent's own messages, started from its
 * bundle, are checked in test/integration/edge-bundle.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '../../shared/log.js';
import { serviceNotifier, watchdogIntervalMs } from '../../edge/service-notify.js';
import { notifySocketMissing, openNotifySocket, type NotifySocket } from '../helpers/notify-socket.js';

test('the watchdog interval is half of WATCHDOG_USEC, and only for the process WATCHDOG_PID names', () => {
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' }), 15_000);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: String(process.pid) }), 15_000);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '1' }), undefined);
  assert.equal(watchdogIntervalMs({}), undefined);
});

test('without NOTIFY_SOCKET nothing is sent', async () => {
  const notifier = serviceNotifier(createLogger('test'), {});
  await notifier.ready();
  await notifier.stopping();
});

describe('over NOTIFY_SOCKET', { skip: notifySocketMissing }, () => {
  let dir: string;
  let socket: NotifySocket;
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'splitinfer-notify-'));
    socket = await openNotifySocket(path.join(dir, 'notify'));
  });
  after(async () => {
    await socket.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('READY=1, then WATCHDOG=1 every half WATCHDOG_USEC, then STOPPING=1 and no more pings', async () => {
    const notifier = serviceNotifier(createLogger('test'), { ...process.env, NOTIFY_SOCKET: socket.path, WATCHDOG_USEC: '200000' });
    await notifier.ready();
    await socket.waitFor('WATCHDOG=1', 2_000);
    await socket.waitFor('WATCHDOG=1', 2_000);
    await notifier.stopping();
    const messages = await socket.settle(300);
    assert.ok(messages[0]!.includes('READY=1'), `first message: ${messages[0]}`);
    const stopping = messages.findIndex((m) => m.includes('STOPPING=1'));
    assert.ok(stopping > 0, 'STOPPING=1 was sent');
    assert.ok(messages.slice(1, stopping).every((m) => m === 'WATCHDOG=1'));
    assert.equal(messages.slice(stopping + 1).length, 0, 'no ping after STOPPING=1');
  });
});
