import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/** Execution providers the config may name, in the order a user would prefer them. */
export type ProviderName = 'cuda' | 'cpu';

export interface ProviderHost {
  /** onnxruntime-node ships the CUDA EP library only when installed with --onnxruntime-node-install=cuda12. */
  cudaLibraryInstalled: boolean;
  /** An NVIDIA driver is loaded (device nodes exist). */
  nvidiaDevicePresent: boolean;
}

export interface ProviderSelection {
  providers: ProviderName[];
  /** One entry per requested provider that was dropped, with the reason a user can act on. */
  skipped: { provider: string; reason: string }[];
}

/**
 * Picks the usable providers from the requested list, keeping its order, and
 * always ends with cpu so a session can be created on any host.
 */
export function selectProviders(requested: readonly string[], host: ProviderHost): ProviderSelection {
  const providers: ProviderName[] = [];
  const skipped: ProviderSelection['skipped'] = [];
  for (const name of requested) {
    if (name === 'cpu') {
      if (!providers.includes('cpu')) providers.push('cpu');
    } else if (name === 'cuda') {
      if (!host.cudaLibraryInstalled) {
        skipped.push({
          provider: 'cuda',
          reason: 'onnxruntime-node was installed without its CUDA provider library (reinstall with npm ci --onnxruntime-node-install=cuda12)',
        });
      } else if (!host.nvidiaDevicePresent) {
        skipped.push({ provider: 'cuda', reason: 'no NVIDIA GPU found (/dev/nvidiactl is missing)' });
      } else {
        providers.push('cuda');
      }
    } else {
      skipped.push({ provider: name, reason: `unknown execution provider '${name}' (expected cuda or cpu)` });
    }
  }
  if (!providers.includes('cpu')) providers.push('cpu');
  return { providers, skipped };
}

/** Looks at this machine: where onnxruntime-node keeps its native libraries, and whether a GPU driver is loaded. */
export function detectProviderHost(): ProviderHost {
  const require = createRequire(import.meta.url);
  const ortRoot = path.dirname(require.resolve('onnxruntime-node/package.json'));
  const binDir = path.join(ortRoot, 'bin', 'napi-v6', process.platform, process.arch);
  return {
    cudaLibraryInstalled: existsSync(path.join(binDir, 'libonnxruntime_providers_cuda.so')),
    nvidiaDevicePresent: existsSync('/dev/nvidiactl'),
  };
}
