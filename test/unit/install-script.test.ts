/**
 * deploy/edge/install.sh in a scratch root (--root): the tree it writes,
 * upgrade and rollback by the `current` symlink, the config kept across
 * upgrades, the devices the unit may open, uninstall and purge. systemctl is
 * a stand-in on PATH that records its calls; systemd-sysusers is the real one
 * (it writes the scratch root's /etc/passwd and /etc/group).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { packageRoot } from '../../shared/paths.js';
import { findProgram } from '../helpers/mqtt.js';

const sysusersMissing = findProgram('systemd-sysusers') ? undefined : 'systemd-sysusers is not installed (apt-get install systemd)';
const arch = os.arch() === 'arm64' ? 'arm64' : 'x64';
const node = realpathSync(process.execPath);

describe('install.sh', { skip: sysusersMissing }, () => {
  let work: string;
  let root: string;
  let fakeBin: string;
  const systemctlLog = () => path.join(work, 'systemctl.log');

  /** An unpacked bundle of `version`: install.sh and its files from deploy/edge, a one-file app. */
  function fakeBundle(version: string, bundleArch = arch): string {
    const dir = path.join(work, `bundle-${version}-${bundleArch}`);
    mkdirSync(path.join(dir, 'app'), { recursive: true });
    for (const file of ['install.sh', 'splitinfer-edge.service', 'splitinfer.sysusers', 'edge.yaml']) copyFileSync(path.join(packageRoot, 'deploy', 'edge', file), path.join(dir, file));
    chmodSync(path.join(dir, 'install.sh'), 0o755);
    writeFileSync(path.join(dir, 'app', 'version.txt'), version);
    writeFileSync(path.join(dir, 'bundle.json'), JSON.stringify({ name: `splitinfer-edge-${version}-linux-${bundleArch}`, version, platform: 'linux', arch: bundleArch, node: '>=20' }, null, 2));
    return dir;
  }

  function install(script: string, args: string[], env: Record<string, string> = {}) {
    writeFileSync(systemctlLog(), '');
    return spawnSync('sh', [script, '--root', root, ...args], { encoding: 'utf8', env: { ...process.env, PATH: `${fakeBin}:${process.env.PATH}`, SYSTEMCTL_LOG: systemctlLog(), ...env } });
  }
  const ok = (result: ReturnType<typeof install>) => {
    assert.equal(result.status, 0, `install.sh failed:\n${result.stdout}\n${result.stderr}`);
    return result;
  };
  const systemctlCalls = () => readFileSync(systemctlLog(), 'utf8').trim().split('\n').filter(Boolean);
  const at = (...parts: string[]) => path.join(root, ...parts);

  before(() => {
    work = mkdtempSync(path.join(os.tmpdir(), 'splitinfer-install-'));
    root = path.join(work, 'root');
    mkdirSync(path.join(root, 'etc'), { recursive: true });
    fakeBin = path.join(work, 'bin');
    mkdirSync(fakeBin);
    writeFileSync(path.join(fakeBin, 'systemctl'), '#!/bin/sh\necho "$*" >> "$SYSTEMCTL_LOG"\n', { mode: 0o755 });
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  test('installs under /opt/splitinfer/<version> with a current link, the config, the system user and the unit, then starts it', () => {
    const result = ok(install(path.join(fakeBundle('1.0.0'), 'install.sh'), []));
    assert.match(result.stdout, /installed splitinfer edge 1\.0\.0/);
    assert.equal(readlinkSync(at('opt/splitinfer/current')), '1.0.0');
    assert.equal(readFileSync(at('opt/splitinfer/current/app/version.txt'), 'utf8'), '1.0.0');
    assert.ok(existsSync(at('opt/splitinfer/1.0.0/install.sh')), 'the installed folder holds install.sh for rollback and uninstall');

    const group = readFileSync(at('etc/group'), 'utf8').split('\n').find((line) => line.startsWith('splitinfer:'));
    assert.ok(group, 'systemd-sysusers created the splitinfer group in the root');
    assert.match(readFileSync(at('etc/passwd'), 'utf8'), /^splitinfer:x:\d+:\d+:.*:\/var\/lib\/splitinfer:\/usr\/sbin\/nologin$/m);
    const config = statSync(at('etc/splitinfer/edge.yaml'));
    assert.equal(config.mode & 0o777, 0o640);
    assert.equal(config.gid, Number(group.split(':')[2]), 'the config is readable by the splitinfer group only');
    assert.equal(readFileSync(at('etc/splitinfer/edge.yaml'), 'utf8'), readFileSync(path.join(packageRoot, 'deploy/edge/edge.yaml'), 'utf8'));

    const unit = readFileSync(at('etc/systemd/system/splitinfer-edge.service'), 'utf8');
    assert.match(unit, new RegExp(`^ExecStart=${node} /opt/splitinfer/current/app/dist/shared/cli.js edge --config /etc/splitinfer/edge.yaml$`, 'm'));
    assert.doesNotMatch(unit, /@NODE@/);
    assert.doesNotMatch(readFileSync(at('etc/systemd/system/splitinfer-edge.service.d/devices.conf'), 'utf8'), /DeviceAllow/, 'no camera in the default config, so no device');
    assert.deepEqual(systemctlCalls(), ['daemon-reload', 'enable splitinfer-edge.service', 'restart splitinfer-edge.service']);
  });

  test('an upgrade installs the new folder, switches current, keeps the config and restarts; rollback switches back', () => {
    const edited = readFileSync(at('etc/splitinfer/edge.yaml'), 'utf8').replace('deviceId: device-1', 'deviceId: camera-7');
    writeFileSync(at('etc/splitinfer/edge.yaml'), edited);
    ok(install(path.join(fakeBundle('1.1.0'), 'install.sh'), []));
    assert.equal(readlinkSync(at('opt/splitinfer/current')), '1.1.0');
    assert.equal(readlinkSync(at('opt/splitinfer/previous')), '1.0.0');
    assert.ok(existsSync(at('opt/splitinfer/1.0.0/app')), 'the old version stays for a rollback');
    assert.equal(readFileSync(at('etc/splitinfer/edge.yaml'), 'utf8'), edited, 'the upgrade kept the edited config');
    assert.deepEqual(systemctlCalls(), ['daemon-reload', 'enable splitinfer-edge.service', 'restart splitinfer-edge.service']);

    const result = ok(install(at('opt/splitinfer/current/install.sh'), ['--rollback']));
    assert.match(result.stdout, /rolled back from 1\.1\.0 to 1\.0\.0/);
    assert.equal(readlinkSync(at('opt/splitinfer/current')), '1.0.0');
    assert.equal(readlinkSync(at('opt/splitinfer/previous')), '1.1.0');
    assert.ok(systemctlCalls().includes('restart splitinfer-edge.service'));
    assert.equal(readFileSync(at('etc/splitinfer/edge.yaml'), 'utf8'), edited);
  });

  test('the unit may open the cameras the config names and the --device paths, nothing else', () => {
    const config = at('etc/splitinfer/edge.yaml');
    writeFileSync(config, readFileSync(config, 'utf8').replace('sources: []', 'sources: [/dev/video2, rtsp://cam.local/]\n  # not /dev/video9: a comment'));
    ok(install(path.join(fakeBundle('1.1.0'), 'install.sh'), ['--device', '/dev/null', '--no-start']));
    const dropin = readFileSync(at('etc/systemd/system/splitinfer-edge.service.d/devices.conf'), 'utf8');
    assert.deepEqual(dropin.match(/^DeviceAllow=.*$/gm), ['DeviceAllow=/dev/video2 rw', 'DeviceAllow=/dev/null rw']);
    assert.deepEqual(systemctlCalls(), [], '--no-start writes files only');
  });

  test('refuses a bundle for another architecture and a Node.js older than 20, saying what to do', () => {
    const foreign = install(path.join(fakeBundle('2.0.0', arch === 'x64' ? 'arm64' : 'x64'), 'install.sh'), ['--no-start']);
    assert.equal(foreign.status, 1);
    assert.match(foreign.stderr, /this bundle is for linux-\w+, this machine is \w+ — build one with splitinfer bundle --arch/);

    const oldNode = path.join(work, 'node18');
    writeFileSync(oldNode, '#!/bin/sh\ncase "$1" in --version) echo v18.19.0 ;; *) echo 18 ;; esac\n', { mode: 0o755 });
    const old = install(path.join(fakeBundle('2.0.0'), 'install.sh'), ['--node', oldNode, '--no-start']);
    assert.equal(old.status, 1);
    assert.match(old.stderr, /is Node\.js v18\.19\.0; the agent needs 20 or newer/);
    assert.equal(readlinkSync(at('opt/splitinfer/current')), '1.1.0', 'a refused install changes nothing');
  });

  test('uninstall removes the service and /opt/splitinfer but keeps config and state; --purge removes those too', () => {
    mkdirSync(at('var/lib/splitinfer'), { recursive: true });
    writeFileSync(at('var/lib/splitinfer/journal'), 'x');
    ok(install(at('opt/splitinfer/current/install.sh'), ['--uninstall']));
    assert.ok(!existsSync(at('opt/splitinfer')));
    assert.ok(!existsSync(at('etc/systemd/system/splitinfer-edge.service')));
    assert.ok(!existsSync(at('etc/systemd/system/splitinfer-edge.service.d')));
    assert.ok(existsSync(at('etc/splitinfer/edge.yaml')) && existsSync(at('var/lib/splitinfer/journal')));
    assert.deepEqual(systemctlCalls(), ['disable --now splitinfer-edge.service', 'daemon-reload']);

    ok(install(path.join(fakeBundle('1.1.0'), 'install.sh'), ['--no-start']));
    ok(install(at('opt/splitinfer/current/install.sh'), ['--uninstall', '--purge']));
    assert.ok(!existsSync(at('etc/splitinfer')) && !existsSync(at('var/lib/splitinfer')) && !existsSync(at('opt/splitinfer')));
  });
});

test('install.sh is POSIX sh', () => {
  execFileSync('sh', ['-n', path.join(packageRoot, 'deploy/edge/install.sh')]);
});
