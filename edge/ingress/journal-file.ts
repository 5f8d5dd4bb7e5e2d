/**
 * An append-only file of records, each framed as
 * `[u32 LE length][u32 LE CRC-32 of the body][body]`, so a record torn by a
 * crash in the middle of a write is recognised when the file is read back:
 * reading stops at the first frame that is short or whose CRC does not match,
 * and the file is cut there (what follows a torn frame was never acknowledged
 * to anyone, because an append resolves only after its write).
 *
 * Appends are group-committed: appends that arrive while a write is under
 * way go out together in the next `writev`, with one `fdatasync` for the
 * batch when any of them asked for it. A record written without a sync
 * survives the process being killed (it is in the kernel's page cache) but
 * not a power cut. `rewrite` replaces the whole file atomically (a new file,
 * synced, renamed over the old one, the folder synced): compaction.
 */
import { closeSync, openSync, fsyncSync } from 'node:fs';
import { open, readFile, rename, truncate, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';

const headerBytes = 8;
/** A length field over this is garbage, not a record (a request is at most limits.maxPayloadBytes plus its envelope). */
const maxRecordBytes = 1 << 30;

interface PendingAppend {
  frame: Buffer;
  sync: boolean;
  resolve(): void;
  reject(err: Error): void;
}

export interface JournalContents {
  records: Buffer[];
  /** Bytes cut off the end: a torn last record. */
  tornBytes: number;
}

export class JournalFile {
  private pending: PendingAppend[] = [];
  private work: Promise<void> = Promise.resolve();
  private writing = false;
  private closed = false;
  /** fdatasync calls so far, for measuring what group commit saves. */
  syncs = 0;

  private constructor(
    readonly file: string,
    private handle: FileHandle,
    /** Bytes in the file now. */
    public bytes: number,
  ) {}

  /** Opens (creating) the file and reads its records back, cutting a torn tail. */
  static async open(file: string): Promise<{ journal: JournalFile; contents: JournalContents }> {
    const data = await readFile(file).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return Buffer.alloc(0);
      throw err;
    });
    const { records, goodBytes } = readFrames(data);
    if (goodBytes < data.length) await truncate(file, goodBytes);
    const handle = await open(file, 'a');
    return { journal: new JournalFile(file, handle, goodBytes), contents: { records, tornBytes: data.length - goodBytes } };
  }

  /** Resolves once the record is written (and, with `sync`, on disk). */
  append(record: Uint8Array, sync: boolean): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`journal ${this.file} is closed`));
    return new Promise((resolve, reject) => {
      this.pending.push({ frame: frame(record), sync, resolve, reject });
      if (!this.writing) this.schedule(() => this.flush());
    });
  }

  /** Replaces the file with these records, after every append made before this call. */
  rewrite(records: () => Uint8Array[]): Promise<void> {
    return this.schedule(async () => {
      await this.flush();
      const next = `${this.file}.compact`;
      const handle = await open(next, 'w');
      try {
        const frames = records().map(frame);
        await handle.writev(frames);
        await handle.datasync();
        this.bytes = frames.reduce((sum, f) => sum + f.length, 0);
      } finally {
        await handle.close();
      }
      await rename(next, this.file);
      syncFolder(path.dirname(this.file));
      await this.handle.close();
      this.handle = await open(this.file, 'a');
    });
  }

  /** Writes what is pending and closes; later appends are refused. */
  async close(): Promise<void> {
    await this.schedule(() => this.flush());
    this.closed = true;
    await this.handle.close();
  }

  private schedule(step: () => Promise<void>): Promise<void> {
    const next = this.work.then(step);
    this.work = next.catch(() => undefined);
    return next;
  }

  private async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0);
      this.writing = true;
      try {
        await this.handle.writev(batch.map((p) => p.frame));
        if (batch.some((p) => p.sync)) {
          await this.handle.datasync();
          this.syncs++;
        }
        this.bytes += batch.reduce((sum, p) => sum + p.frame.length, 0);
        for (const p of batch) p.resolve();
      } catch (err) {
        for (const p of batch) p.reject(new Error(`cannot write the journal ${this.file}: ${(err as Error).message}`));
      } finally {
        this.writing = false;
      }
    }
  }
}

function frame(record: Uint8Array): Buffer {
  const header = Buffer.alloc(headerBytes);
  header.writeUInt32LE(record.length, 0);
  header.writeUInt32LE(crc32(record), 4);
  return Buffer.concat([header, record]);
}

function readFrames(data: Buffer): { records: Buffer[]; goodBytes: number } {
  const records: Buffer[] = [];
  let offset = 0;
  while (offset + headerBytes <= data.length) {
    const length = data.readUInt32LE(offset);
    const end = offset + headerBytes + length;
    if (length > maxRecordBytes || end > data.length) break;
    const body = data.subarray(offset + headerBytes, end);
    if (crc32(body) !== data.readUInt32LE(offset + 4)) break;
    records.push(body);
    offset = end;
  }
  return { records, goodBytes: offset };
}

/** A rename is durable only once its folder is synced (POSIX leaves it to the file system otherwise). */
function syncFolder(folder: string): void {
  const fd = openSync(folder, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
