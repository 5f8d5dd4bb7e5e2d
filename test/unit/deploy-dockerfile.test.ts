/**
 * The cloud tier's images, deploy/cloud/Dockerfile and Dockerfile.cuda, read
 * without a Docker daemon: a build stage that runs `prepare` (TypeScript and
 * the image-encoder graphs) on every folder the cloud's code reaches, a
 * runtime stage with production node_modules only, a non-root user, and a
 * HEALTHCHECK that, run as written, gets SERVING from a real cloud started
 * with the image's own ENTRYPOINT and CMD. The CUDA image installs
 * onnxruntime-node's CUDA provider with the flag its install script reads.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { cloudConfigFromArgs } from '../../cloud/command.js';
import { ServingStatus } from '../../cloud/health.js';
import { startCloudServer, type CloudServer } from '../../cloud/server.js';
import { createLogger } from '../../shared/log.js';
import { packageRoot } from '../../shared/paths.js';
import { commandModule, execForm, instructions, parseCopy, parseDockerfile, reachableModules, type Stage } from '../helpers/dockerfile.js';
import { makeTestPki, opensslMissing, type TestPki } from '../helpers/tls.js';

const run = promisify(execFile);
const log = createLogger('test-dockerfile', process.env.SPLITINFER_LOG_LEVEL ?? 'silent');
const cli = path.join(packageRoot, 'dist/shared/cli.js');

/** .dockerignore patterns as the builder applies them (path globs from the context root). */
function ignoredByDocker(source: string): boolean {
  const patterns = readFileSync(path.join(packageRoot, '.dockerignore'), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  return patterns.some((pattern) => {
    const regex = new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')}(/|$)`);
    return regex.test(source);
  });
}

const images = [
  { file: 'deploy/cloud/Dockerfile', gpu: false },
  { file: 'deploy/cloud/Dockerfile.cuda', gpu: true },
];

for (const image of images) {
  describe(image.file, () => {
    const stages = parseDockerfile(readFileSync(path.join(packageRoot, image.file), 'utf8'));
    const runtime = stages.at(-1)!;
    const stage = (name: string) => stages.find((s) => s.name === name);
    const only = (s: Stage, keyword: string) => {
      const found = instructions(s, keyword);
      assert.equal(found.length, 1, `${keyword} in stage ${s.name}: expected one, found ${found.length}`);
      return found[0]!.text;
    };
    const entrypoint = execForm(only(runtime, 'ENTRYPOINT'));
    const cmd = execForm(only(runtime, 'CMD'));
    const config = cloudConfigFromArgs(cmd)!;

    test('the build stage runs prepare (tsc and the image-encoder import) on everything the cloud imports', () => {
      const build = stage('build');
      assert.ok(build, 'a stage named build');
      const npmCi = instructions(build, 'RUN').filter((r) => /\bnpm ci\b/.test(r.text));
      assert.equal(npmCi.length, 1);
      assert.doesNotMatch(npmCi[0]!.text, /--ignore-scripts|--omit=dev/, 'prepare and the dev dependencies (typescript) must run here');
      const prepare = (JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.prepare!;
      assert.match(prepare, /\btsc -p \./);
      assert.match(prepare, /models\/image-encoder\/install\.js/);

      const copied = instructions(build, 'COPY').flatMap((c) => parseCopy(c.text).sources);
      for (const source of copied) {
        assert.ok(existsSync(path.join(packageRoot, source)), `COPY ${source}: not in the repository`);
        assert.ok(!ignoredByDocker(source), `COPY ${source}: excluded by .dockerignore`);
      }
      for (const needed of ['package.json', 'package-lock.json', '.npmrc', 'tsconfig.json']) assert.ok(copied.includes(needed), `${needed} is copied before npm ci`);
      const commands = [entrypoint[2]!, execForm(only(runtime, 'HEALTHCHECK'))[2]!].map(commandModule);
      const folders = new Set([...reachableModules(['shared/cli.js', ...commands, 'models/image-encoder/install.js'])].map((f) => f.split('/')[0]!));
      for (const folder of folders) assert.ok(copied.includes(folder), `the cloud's code imports from ${folder}/, which the build stage does not copy`);
      assert.ok(!folders.has('test'), 'test/ stays out of the image');
    });

    test('the runtime stage has the built app, the models and production node_modules only', () => {
      const copies = instructions(runtime, 'COPY').map((c) => parseCopy(c.text));
      const fromStage = (destination: string) => copies.find((c) => c.destination === destination)?.from;
      for (const c of copies) {
        assert.ok(c.from, `runtime COPY ${c.sources.join(' ')} comes from the context, not a build stage`);
        assert.ok(stages.indexOf(stage(c.from)!) >= 0 && stages.indexOf(stage(c.from)!) < stages.length - 1, `COPY --from=${c.from}: no earlier stage of that name`);
      }
      assert.equal(fromStage('dist'), 'build');
      assert.equal(fromStage('models'), 'build', 'the image-encoder graphs exist only after prepare ran');
      assert.equal(fromStage('package.json'), 'build', 'packageRoot and the version come from package.json');
      const depsStage = stage(fromStage('node_modules')!)!;
      const install = instructions(depsStage, 'RUN').find((r) => /\bnpm ci\b/.test(r.text));
      assert.match(install?.text ?? '', /npm ci --omit=dev/, 'node_modules come from npm ci --omit=dev');
      assert.deepEqual(entrypoint.slice(0, 3), ['node', 'dist/shared/cli.js', 'cloud']);
      assert.ok(existsSync(cli), 'dist/shared/cli.js is what the build stage produces');
      const nodeInBase = runtime.base.startsWith('node:');
      assert.ok(nodeInBase || copies.some((c) => c.destination === '/usr/local/bin/node'), 'node is in the runtime image');
    });

    test('runs as a non-root user it creates', () => {
      const user = only(runtime, 'USER');
      assert.doesNotMatch(user, /^(root|0)(:|$)/);
      const creates = instructions(runtime, 'RUN').some((r) => new RegExp(`useradd\\b.*--uid ${user}\\b`).test(r.text));
      assert.ok(creates, `USER ${user} is created in the runtime stage (a uid without a passwd entry breaks tools that look it up)`);
    });

    test("the CMD's flags are the cloud command's, reachable from outside on the exposed ports", () => {
      assert.equal(config.host, '0.0.0.0');
      assert.equal(config.metricsHost, '0.0.0.0');
      const exposed = only(runtime, 'EXPOSE').split(' ').map(Number);
      assert.ok(exposed.includes(config.port) && exposed.includes(config.metricsPort), `EXPOSE ${exposed.join(' ')} covers ports ${config.port} and ${config.metricsPort}`);
      assert.ok(config.tls.cert && config.tls.key, 'serves TLS by default (plaintext off loopback is an explicit --insecure)');
      assert.deepEqual(config.providers, image.gpu ? ['cuda', 'cpu'] : ['cpu']);
    });

    test('HEALTHCHECK asks grpc.health.v1 on the gRPC port, in the transport the CMD serves', () => {
      const healthcheck = execForm(only(runtime, 'HEALTHCHECK'));
      assert.deepEqual(healthcheck.slice(0, 3), ['node', 'dist/shared/cli.js', 'health']);
      const address = healthcheck[healthcheck.indexOf('--address') + 1]!;
      assert.equal(Number(address.split(':').at(-1)), config.port);
      assert.equal(healthcheck.some((a) => a.startsWith('--tls')), Boolean(config.tls.cert));
    });

    if (image.gpu) {
      test("installs onnxruntime-node's CUDA provider with the flag its install script reads, and checks the library arrived", () => {
        const deps = stage(parseCopy(instructions(runtime, 'COPY').find((c) => parseCopy(c.text).destination === 'node_modules')!.text).from!)!;
        const runText = instructions(deps, 'RUN').map((r) => r.text).join('\n');
        const script = /node (node_modules\/onnxruntime-node\/script\/install\.js)/.exec(runText)?.[1];
        assert.ok(script && existsSync(path.join(packageRoot, script)), "runs onnxruntime-node's own install script");
        const flag = /ONNXRUNTIME_NODE_INSTALL=(\S+)/.exec(runText)?.[1];
        const utils = readFileSync(path.join(packageRoot, 'node_modules/onnxruntime-node/script/install-utils.js'), 'utf8');
        assert.match(utils, /process\.env\.ONNXRUNTIME_NODE_INSTALL/, 'the script reads ONNXRUNTIME_NODE_INSTALL');
        const metadata = readFileSync(path.join(packageRoot, 'node_modules/onnxruntime-node/script/install-metadata.js'), 'utf8');
        assert.match(metadata, new RegExp(`'linux/x64': \\[[^\\]]*'${flag}'`), `install-metadata lists ${flag} for linux/x64`);
        const checked = /test -f node_modules\/onnxruntime-node\/bin\/napi-v6\/linux\/x64\/(\S+)/.exec(runText)?.[1];
        assert.ok(checked && metadata.includes(`'./${checked}'`), 'the build checks for a library the CUDA manifest installs');
        assert.match(runtime.base, /^nvidia\/cuda:12\.[\d.]+-cudnn-runtime-/, 'a CUDA 12 runtime base with cuDNN');
      });
    }

    describe('the HEALTHCHECK, run as written, against a cloud started with the image CMD', { skip: opensslMissing }, () => {
      let pki: TestPki;
      let server: CloudServer;
      let address: string;
      before(async () => {
        pki = makeTestPki();
        // The image's config with the test's certificates, free ports, loopback and one small model.
        const local = { ...config, host: '127.0.0.1', port: 0, metricsPort: -1, models: ['text-intent'], intraOpThreads: 1, tls: { cert: pki.serverCert, key: pki.serverKey, clientCa: '' } };
        server = await startCloudServer(local, log);
        address = `127.0.0.1:${server.port}`;
      });
      after(async () => {
        await server?.drain(0);
        pki?.remove();
      });
      const healthcheck = () => {
        const args = execForm(only(runtime, 'HEALTHCHECK')).slice(1);
        args[args.indexOf('--address') + 1] = address;
        return run(process.execPath, [path.join(packageRoot, args[0]!), ...args.slice(1)], { cwd: packageRoot });
      };

      test('exits 0 with SERVING', async () => {
        const { stdout } = await healthcheck();
        assert.match(stdout, /SERVING/);
      });

      test('exits 1 with NOT_SERVING while the cloud drains', async () => {
        server.health.setAll(ServingStatus.NOT_SERVING);
        await assert.rejects(healthcheck(), (err: { code: number; stdout: string }) => err.code === 1 && /: NOT_SERVING$/m.test(err.stdout));
      });
    });
  });
}
