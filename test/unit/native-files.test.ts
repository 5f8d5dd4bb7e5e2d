/**
 * The ELF reader behind the bundle check (edge/bundle/native-files.ts): it
 * names the machine a binary is for from its header, and a tree passes only
 * when every native file is for the target and every required part is there.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { binaryKindOf, checkNativeFiles, requiredNatives } from '../../edge/bundle/native-files.js';

/** The first 20 bytes of a little-endian 64-bit ELF file for e_machine `machine`. */
function elfHeader(machine: number): Buffer {
  const head = Buffer.alloc(64);
  head.writeUInt32BE(0x7f454c46, 0);
  head[4] = 2; // ELFCLASS64
  head[5] = 1; // ELFDATA2LSB
  head.writeUInt16LE(3, 16); // ET_DYN
  head.writeUInt16LE(machine, 18);
  return head;
}

test('reads the machine of an ELF file, and tells macOS, Windows and scripts apart', () => {
  assert.deepEqual(binaryKindOf(elfHeader(0x3e)), { format: 'elf', machine: 'x64', bits: 64 });
  assert.deepEqual(binaryKindOf(elfHeader(0xb7)), { format: 'elf', machine: 'arm64', bits: 64 });
  assert.deepEqual(binaryKindOf(Buffer.from([0xcf, 0xfa, 0xed, 0xfe, 0, 0, 0, 0])), { format: 'mach-o' });
  assert.deepEqual(binaryKindOf(Buffer.from('MZ\x90\x00')), { format: 'pe' });
  assert.deepEqual(binaryKindOf(Buffer.from('#!/bin/sh\n')), { format: 'script' });
  assert.deepEqual(binaryKindOf(Buffer.from('export {}')), { format: 'other' });
});

test('a tree passes for its target only, and names each foreign or missing native part', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'splitinfer-natives-'));
  try {
    for (const dir of Object.values(requiredNatives('arm64'))) {
      mkdirSync(path.join(root, 'node_modules', dir), { recursive: true });
      writeFileSync(path.join(root, 'node_modules', dir, 'part.node'), elfHeader(0xb7));
    }
    writeFileSync(path.join(root, 'install.sh'), '#!/bin/sh\n', { mode: 0o755 });
    assert.deepEqual(checkNativeFiles(root, 'arm64').problems, []);
    assert.equal(checkNativeFiles(root, 'arm64').checked.length, Object.keys(requiredNatives('arm64')).length);

    const forX64 = checkNativeFiles(root, 'x64').problems;
    assert.ok(forX64.some((p) => /part\.node: ELF for arm64 \(64-bit\), not linux-x64/.test(p)), forX64.join('\n'));
    assert.ok(forX64.some((p) => /^onnxruntime-node: no linux-x64 binary under node_modules\/onnxruntime-node\/bin\/napi-v6\/linux\/x64/.test(p)), forX64.join('\n'));

    writeFileSync(path.join(root, 'node_modules', 'mac.node'), Buffer.from([0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1]));
    writeFileSync(path.join(root, 'node_modules', 'broken.so.1'), 'not a library');
    assert.deepEqual(checkNativeFiles(root, 'arm64').problems, [
      'node_modules/broken.so.1: named like a native library but not an ELF file',
      'node_modules/mac.node: a macOS binary, which linux-arm64 cannot load',
    ]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
