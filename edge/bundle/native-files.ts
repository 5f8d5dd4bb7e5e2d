/**
 * What a bundle's native code is built for, read from the files themselves:
 * an ELF header names its machine (e_machine), so a bundle built on an x64
 * laptop for an arm64 Jetson can be checked before it is copied there, and
 * `splitinfer doctor` can check an installed bundle against the device.
 */
import { closeSync, openSync, readdirSync, readSync } from 'node:fs';
import path from 'node:path';

export type BundleArch = 'x64' | 'arm64';
export const bundleArches: readonly BundleArch[] = ['x64', 'arm64'];

/** e_machine values (System V ABI, "Machine" table) of the architectures a Node.js build may target. */
const elfMachines: Record<number, string> = { 0x03: 'ia32', 0x28: 'arm', 0x3e: 'x64', 0xb7: 'arm64', 0xf3: 'riscv64', 0x15: 'ppc64', 0x16: 's390x' };

export type BinaryKind =
  | { format: 'elf'; machine: string; bits: 32 | 64 }
  | { format: 'mach-o' | 'pe' | 'script' | 'other' };

/** The kind of a file from its first bytes. */
export function binaryKindOf(head: Uint8Array): BinaryKind {
  const bytes = Buffer.from(head);
  if (bytes.length >= 20 && bytes.readUInt32BE(0) === 0x7f454c46) {
    // EI_DATA (byte 5): 1 little-endian, 2 big-endian; e_machine is the 16-bit field at offset 18.
    const code = bytes[5] === 2 ? bytes.readUInt16BE(18) : bytes.readUInt16LE(18);
    return { format: 'elf', machine: elfMachines[code] ?? `e_machine 0x${code.toString(16)}`, bits: bytes[4] === 2 ? 64 : 32 };
  }
  if (bytes.length >= 4 && [0xfeedface, 0xfeedfacf, 0xcefaedfe, 0xcffaedfe, 0xcafebabe].includes(bytes.readUInt32BE(0))) return { format: 'mach-o' };
  if (bytes.length >= 2 && bytes[0] === 0x4d && bytes[1] === 0x5a) return { format: 'pe' };
  if (bytes.length >= 2 && bytes[0] === 0x23 && bytes[1] === 0x21) return { format: 'script' };
  return { format: 'other' };
}

export function readBinaryKind(file: string): BinaryKind {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(20);
    return binaryKindOf(head.subarray(0, readSync(fd, head, 0, head.length, 0)));
  } finally {
    closeSync(fd);
  }
}

/**
 * The native parts the agent cannot run without, by package folder (under
 * node_modules): each must hold at least one ELF file for the target.
 * msgpackr-extract is optional to msgpackr (a faster decoder; msgpackr falls
 * back to JavaScript), and its arm64 package ships musl builds only.
 */
export const requiredNatives = (arch: BundleArch): Record<string, string> => ({
  'onnxruntime-node': `onnxruntime-node/bin/napi-v6/linux/${arch}`,
  sharp: `@img/sharp-linux-${arch}`,
  libvips: `@img/sharp-libvips-linux-${arch}`,
  'msgpackr-extract': `msgpackr/node_modules/@msgpackr-extract/msgpackr-extract-linux-${arch}`,
  ffmpeg: `@ffmpeg-installer/linux-${arch}`,
});

export interface NativeReport {
  /** Native files checked (ELF for the target), relative to the root. */
  checked: string[];
  /** What is wrong, one line each; empty when the tree runs on `linux-<arch>`. */
  problems: string[];
}

/**
 * Reads the head of every file under `root`: each ELF file (executables,
 * addons, libraries) must be for 64-bit `arch`, no macOS or Windows binary
 * may be there, and each required native part must be. `nodeModules` is the node_modules folder, relative to root.
 */
export function checkNativeFiles(root: string, arch: BundleArch, nodeModules = 'node_modules'): NativeReport {
  const checked: string[] = [];
  const problems: string[] = [];
  const elfDirs = new Set<string>();
  const walk = (dir: string) => {
    // Sorted, so reports read the same on every file system.
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      if (!entry.isFile()) continue;
      const rel = path.relative(root, file);
      const kind = readBinaryKind(file);
      if (kind.format === 'elf') {
        if (kind.machine !== arch || kind.bits !== 64) problems.push(`${rel}: ELF for ${kind.machine} (${kind.bits}-bit), not linux-${arch}`);
        else checked.push(rel);
        elfDirs.add(path.dirname(rel));
      } else if (kind.format === 'mach-o' || kind.format === 'pe') {
        problems.push(`${rel}: a ${kind.format === 'pe' ? 'Windows' : 'macOS'} binary, which linux-${arch} cannot load`);
      } else if (kind.format === 'other' && /\.(node|so(\.\d+)*)$/.test(entry.name)) {
        problems.push(`${rel}: named like a native library but not an ELF file`);
      }
    }
  };
  walk(root);
  for (const [part, dir] of Object.entries(requiredNatives(arch))) {
    const prefix = path.join(nodeModules, dir);
    if (![...elfDirs].some((d) => d === prefix || d.startsWith(prefix + path.sep))) {
      problems.push(`${part}: no linux-${arch} binary under ${prefix} — the bundle's node_modules was not installed for ${arch}`);
    }
  }
  return { checked, problems };
}
