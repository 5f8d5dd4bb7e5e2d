/**
 * The agent's unit, deploy/edge/splitinfer-edge.service, as install.sh
 * writes it: systemd-analyze verify accepts it, and systemd-analyze
 * security rates its exposure at most 2.5 ("OK").
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { packageRoot } from '../../shared/paths.js';
import { findProgram } from '../helpers/mqtt.js';

const analyzeMissing = findProgram('systemd-analyze') ? undefined : 'systemd-analyze is not installed (apt-get install systemd)';

describe('splitinfer-edge.service', { skip: analyzeMissing }, () => {
  let dir: string;
  let unit: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'splitinfer-unit-'));
    unit = path.join(dir, 'splitinfer-edge.service');
    const template = readFileSync(path.join(packageRoot, 'deploy/edge/splitinfer-edge.service'), 'utf8');
    writeFileSync(unit, template.replaceAll('@NODE@', realpathSync(process.execPath)));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('systemd-analyze verify accepts it', () => {
    const result = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stderr.trim(), '', 'no warnings');
  });

  test('systemd-analyze security rates it OK (exposure at most 2.5)', () => {
    const result = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', unit], { encoding: 'utf8' });
    const rating = /Overall exposure level for splitinfer-edge\.service: ([\d.]+) (\w+)/.exec(result.stdout);
    assert.ok(rating, `no rating in:\n${result.stdout}\n${result.stderr}`);
    assert.ok(Number(rating[1]) <= 2.5, `exposure ${rating[1]} ${rating[2]}`);
    assert.equal(rating[2], 'OK');
  });

  test('it is a notify service with a watchdog, restarted on failure, with its state in StateDirectory', () => {
    const text = readFileSync(unit, 'utf8');
    for (const line of ['Type=notify', 'NotifyAccess=all', 'Restart=on-failure', 'StateDirectory=splitinfer', 'ProtectSystem=strict', 'ProtectHome=yes', 'PrivateTmp=yes', 'NoNewPrivileges=yes', 'DevicePolicy=closed', 'SystemCallFilter=@system-service']) {
      assert.match(text, new RegExp(`^${line}$`, 'm'));
    }
    assert.match(text, /^WatchdogSec=\d+$/m);
    assert.match(text, /^RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6$/m);
  });
});
