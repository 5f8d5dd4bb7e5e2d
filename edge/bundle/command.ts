import os from 'node:os';
import { parseArgs } from 'node:util';
import { packageRoot } from '../../shared/paths.js';
import { buildBundle } from './build.js';
import { bundleArches, type BundleArch } from './native-files.js';

const help = `usage: splitinfer bundle [--arch arm64|x64] [--out DIR] [--version V]

Builds the offline install bundle of the edge agent for a Linux device:
splitinfer-edge-<version>-linux-<arch>.tar.gz with the built app, production
node_modules holding the target's native binaries (onnxruntime-node, sharp,
msgpackr-extract, ffmpeg), the edge's INT8 models, install.sh, the systemd
unit and a default config. Run from a built checkout (npm run build); npm
fetches the target's native packages it has not cached. Copy the tarball to
the device, unpack it and run sudo ./install.sh there (README: Install on a device).

options:
  --arch arm64|x64   the device's architecture (default: this machine's, ${os.arch()})
  --out DIR          where the tarball goes (default: the current folder)
  --version V        names /opt/splitinfer/<V> on the device (default: package.json's version)
`;

export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { arch: { type: 'string' }, out: { type: 'string' }, version: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    console.log(help);
    return 0;
  }
  const arch = values.arch ?? os.arch();
  if (!bundleArches.includes(arch as BundleArch)) {
    console.error(`splitinfer bundle: --arch ${arch} is not one the bundle supports (${bundleArches.join(', ')})`);
    return 2;
  }
  const started = performance.now();
  const bundle = await buildBundle({ arch: arch as BundleArch, outDir: values.out ?? process.cwd(), version: values.version, repoRoot: packageRoot });
  const seconds = ((performance.now() - started) / 1000).toFixed(0);
  console.log(`${bundle.tarball}\n  linux-${arch}, ${bundle.nativeFiles} native files checked, models ${bundle.manifest.models.join(', ')} (${seconds} s)`);
  return 0;
}
