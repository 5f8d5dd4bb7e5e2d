/**
 * The bundle's production node_modules for another machine: npm installs
 * the locked tree with the target's optional native packages
 * (`--os linux --cpu <arch>` picks `@img/sharp-linux-arm64`,
 * `@ffmpeg-installer/linux-arm64`, msgpackr-extract's arm64 build), in a
 * folder of its own so the repository's node_modules is never touched.
 * npm reuses its download cache; only what it lacks is fetched (build time,
 * never on the device).
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { BundleArch } from './native-files.js';

const run = promisify(execFile);

/**
 * Production dependencies the agent never loads: nsfwjs (and through it, as
 * its peer, @tensorflow/tfjs, ~300 MB) only makes the image-encoder's fp32
 * files for the cloud at `npm run prepare`; the edge runs the committed INT8
 * MobileNetV2.
 */
export const buildOnlyDependencies = ['nsfwjs'];

/** Installs the locked production tree for linux-`arch` into `workDir`/node_modules and returns that folder. */
export async function installProductionModules(repoRoot: string, workDir: string, arch: BundleArch): Promise<string> {
  for (const file of ['package.json', 'package-lock.json', '.npmrc']) {
    if (existsSync(path.join(repoRoot, file))) copyFileSync(path.join(repoRoot, file), path.join(workDir, file));
  }
  // No install scripts: they would build or download for this machine, not the target (.npmrc keeps onnxruntime-node's CUDA download off too).
  const target = ['--omit=dev', '--ignore-scripts', '--os=linux', `--cpu=${arch}`, '--no-audit', '--no-fund'];
  await npm(workDir, ['ci', ...target, '--prefer-offline']);
  const manifest = JSON.parse(readFileSync(path.join(workDir, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies?: unknown };
  for (const name of buildOnlyDependencies) delete manifest.dependencies[name];
  delete manifest.devDependencies;
  writeFileSync(path.join(workDir, 'package.json'), JSON.stringify(manifest, null, 2));
  await npm(workDir, ['prune', ...target, '--offline']);
  const modules = path.join(workDir, 'node_modules');
  keepOnlyTargetOrtBinaries(modules, arch);
  return modules;
}

async function npm(cwd: string, args: string[]): Promise<void> {
  try {
    // Not npm_* variables of an `npm run` around us: npm_config_local_prefix would point this npm at the repository.
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.toLowerCase().startsWith('npm_')));
    await run('npm', [...args, '--prefix', cwd], { cwd, env, maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    const { stderr, message } = err as { stderr?: string; message: string };
    throw new Error(`npm ${args.join(' ')} failed in ${cwd}: ${(stderr || message).trim().split('\n').slice(-8).join('\n')}`, { cause: err });
  }
}

/** onnxruntime-node ships every platform's binaries in one package (~290 MB); the bundle keeps linux/<arch>. */
function keepOnlyTargetOrtBinaries(modules: string, arch: BundleArch): void {
  const bin = path.join(modules, 'onnxruntime-node', 'bin');
  for (const napi of readdirSync(bin)) {
    for (const platform of readdirSync(path.join(bin, napi))) {
      for (const cpu of readdirSync(path.join(bin, napi, platform))) {
        if (platform !== 'linux' || cpu !== arch) rmSync(path.join(bin, napi, platform, cpu), { recursive: true });
      }
    }
  }
}
