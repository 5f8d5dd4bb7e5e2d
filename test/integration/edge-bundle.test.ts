/**
 * `splitinfer bundle` end to end: each bundle is built, unpacked, and every
 * native file in it read with the ELF reader (the target's architecture,
 * nothing for another platform, nothing required missing). The bundle for
 * this machine's architecture then runs the agent from the unpacked folder,
 * with no repository around it, under a notification socket as systemd
 * would give it, and answers a request on the device.
 * npm fetches the target's native packages it has not cached: without the
 * registry, the bundles that need a download are skipped with the reason.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { buildBundle, type BuiltBundle } from '../../edge/bundle/build.js';
import { checkNativeFiles, type BundleArch } from '../../edge/bundle/native-files.js';
import { freeLoopbackPort, startEmbeddedBroker, stopChild, type EmbeddedBroker } from '../../edge/local-stack.js';
import { packageRoot } from '../../shared/paths.js';
import { AgentRequester } from '../helpers/mqtt.js';
import { notifySocketMissing, openNotifySocket } from '../helpers/notify-socket.js';

const hostArch: BundleArch = os.arch() === 'arm64' ? 'arm64' : 'x64';
const otherArch: BundleArch = hostArch === 'x64' ? 'arm64' : 'x64';
const offline = /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|network/i;

/** Builds and unpacks one bundle; a failed download makes its tests skip, any other failure fails them. */
function bundleFixture(arch: BundleArch) {
  const fixture = { dir: '', top: '', app: '', built: undefined as BuiltBundle | undefined, error: undefined as Error | undefined };
  before(async () => {
    fixture.dir = mkdtempSync(path.join(os.tmpdir(), `splitinfer-bundle-test-${arch}-`));
    try {
      fixture.built = await buildBundle({ arch, outDir: fixture.dir, repoRoot: packageRoot });
      execFileSync('tar', ['-xzf', fixture.built.tarball, '-C', fixture.dir]);
      rmSync(fixture.built.tarball);
      fixture.top = path.join(fixture.dir, fixture.built.manifest.name);
      fixture.app = path.join(fixture.top, 'app');
    } catch (err) {
      fixture.error = err as Error;
    }
  });
  after(() => rmSync(fixture.dir, { recursive: true, force: true }));
  /** The unpacked bundle, or a skip when npm could not reach the registry. */
  const ready = (t: TestContext) => {
    if (fixture.error && offline.test(fixture.error.message)) t.skip(`the npm registry is unreachable: ${fixture.error.message.split('\n')[0]}`);
    else if (fixture.error) throw fixture.error;
    return fixture.built !== undefined;
  };
  return { fixture, ready };
}

function checkUnpackedBundle(top: string, app: string, arch: BundleArch, built: BuiltBundle) {
  const report = checkNativeFiles(app, arch);
  assert.deepEqual(report.problems, []);
  assert.ok(report.checked.some((f) => f.endsWith('onnxruntime_binding.node')) && report.checked.some((f) => new RegExp(`sharp-linux-${arch}[^/]*\\.node$`).test(f)), report.checked.join('\n'));
  assert.ok(report.checked.some((f) => f.endsWith(path.join(`linux-${arch}`, 'ffmpeg'))), 'the ffmpeg the video feature runs');
  const ortPlatforms = readdirSync(path.join(app, 'node_modules/onnxruntime-node/bin/napi-v6')).flatMap((p) => readdirSync(path.join(app, 'node_modules/onnxruntime-node/bin/napi-v6', p)).map((cpu) => `${p}/${cpu}`));
  assert.deepEqual(ortPlatforms, [`linux/${arch}`]);
  for (const file of ['install.sh', 'splitinfer-edge.service', 'splitinfer.sysusers', 'edge.yaml', 'bundle.json']) assert.ok(existsSync(path.join(top, file)), file);
  const manifest = JSON.parse(readFileSync(path.join(top, 'bundle.json'), 'utf8'));
  assert.deepEqual({ arch: manifest.arch, platform: manifest.platform, version: manifest.version }, { arch, platform: 'linux', version: built.manifest.version });
  assert.ok(existsSync(path.join(app, 'models/image-encoder/mobilenet-v2.int8.onnx')), 'the edge image encoder');
  assert.ok(!existsSync(path.join(app, 'models/image-encoder/inception-v3.fp32.onnx')), 'no cloud-only model');
  assert.ok(!existsSync(path.join(app, 'dist/test')), 'no tests');
  assert.ok(!existsSync(path.join(app, 'node_modules/nsfwjs')) && !existsSync(path.join(app, 'node_modules/@tensorflow/tfjs-core')), 'no build-only packages');
}

describe(`the ${hostArch} bundle (this machine's)`, { timeout: 600_000 }, () => {
  const { fixture, ready } = bundleFixture(hostArch);

  test('holds only linux-' + hostArch + ' native files, every required one, the edge models and the install files', (t) => {
    if (!ready(t)) return;
    checkUnpackedBundle(fixture.top, fixture.app, hostArch, fixture.built!);
  });

  describe('its agent, run from the unpacked folder', { skip: notifySocketMissing }, () => {
    let broker: EmbeddedBroker;
    before(async () => {
      broker = await startEmbeddedBroker();
    });
    after(() => broker.stop());

    test('tells systemd READY=1, pings the watchdog, answers on the device and says STOPPING=1 on SIGTERM', async (t) => {
      if (!ready(t)) return;
      const socket = await openNotifySocket(path.join(fixture.dir, 'notify'));
      t.after(() => socket.close());
      const cli = path.join(fixture.app, 'dist/shared/cli.js');
      const cloud = `127.0.0.1:${await freeLoopbackPort()}`; // nothing listens: every task runs on the device
      const agent = spawn(process.execPath, [cli, 'edge', '--broker', broker.url, '--protocol', '4', '--device-id', 'bundled-1', '--cloud', cloud], {
        cwd: fixture.top,
        env: { PATH: process.env.PATH, NOTIFY_SOCKET: socket.path, WATCHDOG_USEC: '1000000', SPLITINFER_LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      t.after(() => stopChild(agent));
      await socket.waitFor('READY=1', 120_000);
      await socket.waitFor('WATCHDOG=1', 5_000);

      const requester = await AgentRequester.connect({ url: broker.url, protocolVersion: 4 }, 'bundled-1');
      t.after(() => requester.client.endAsync());
      const image = readFileSync(path.join(packageRoot, 'models/samples/ocr/edge-notice.webp'));
      const { reply } = await requester.ask({ id: 'bundled', inputs: { text: 'I forgot my password', image }, prefer: { image: 'edge' }, deadlineMs: 30_000 }, { timeoutMs: 60_000 });
      assert.equal(reply.errors, undefined, JSON.stringify(reply.errors));
      assert.equal(reply.placement.text!.ran, 'edge');
      assert.equal(reply.placement.image!.ran, 'edge');
      assert.ok(reply.results.text && reply.results.image, JSON.stringify(reply.results));

      // splitinfer doctor from the bundle reads its native files against this machine and finds the broker.
      // Async: the broker runs in this process. It exits 1, for the cloud.
      const doctor = await new Promise<{ stdout: string }>((resolve) =>
        execFile(process.execPath, [cli, 'doctor', '--broker', broker.url, '--protocol', '4', '--cloud', cloud, '--timeout-ms', '1000'], { cwd: fixture.top }, (_err, stdout) => resolve({ stdout })),
      );
      assert.match(doctor.stdout, new RegExp(`✓ bundle +splitinfer edge ${fixture.built!.manifest.version} for linux-${hostArch}, \\d+ native files checked`), doctor.stdout);
      assert.match(doctor.stdout, /✓ mqtt broker/);
      assert.match(doctor.stdout, /✗ cloud tier/, 'nothing listens there');

      agent.kill('SIGTERM');
      assert.equal(await new Promise((resolve) => agent.once('exit', resolve)), 0);
      await socket.waitFor('STOPPING=1', 5_000);
    });
  });
});

describe(`the ${otherArch} bundle (cross-built)`, { timeout: 600_000 }, () => {
  const { fixture, ready } = bundleFixture(otherArch);

  test('holds only linux-' + otherArch + ' native files, every required one, the edge models and the install files', (t) => {
    if (!ready(t)) return;
    checkUnpackedBundle(fixture.top, fixture.app, otherArch, fixture.built!);
  });
});
