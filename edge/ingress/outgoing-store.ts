/**
 * mqtt.js's outgoing store (what it has sent and the broker has not yet
 * acknowledged) kept in a journal file in the agent's state folder, so it
 * outlives the process. This is what makes an answer exactly once on the
 * agent → broker hop: answers go out at QoS 2, and the broker knows a QoS 2
 * message by its packet id until it has seen PUBREL. After a SIGKILL the
 * next start sends the stored PUBLISH again *with the same packet id* (the
 * broker sends PUBREC and does not deliver it twice) or the stored PUBREL.
 * With the in-memory store an answer the broker had not acknowledged was
 * published again under a new packet id: a second copy for the requester.
 *
 * Records (msgpack): `put` {p: packet, tag?} synced before mqtt.js writes
 * the packet, `del` {id} not synced (losing one to a power cut means one more
 * resend). The file is compacted to the live packets once it holds many more
 * records than live ones.
 *
 * A tag names what a PUBLISH carries (the delivery ledger's request and
 * reply address), so that after a crash the ledger does not publish again
 * an answer the store already had: its own note of that comes a moment
 * after the store's put.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import path from 'node:path';
import type { IStore, Packet, PacketCallback } from 'mqtt';
import { Packr } from 'msgpackr';
import { JournalFile } from './journal-file.js';

type StoreRecord = { t: 'put'; p: Packet; tag?: string } | { t: 'del'; id: number };

const packr = new Packr({ useRecords: false, mapsAsObjects: true });
const compactAfterRecords = 10_000;

export class OutgoingStore implements IStore {
  private records = 0;
  private closed = false;
  /** Fingerprint of a PUBLISH about to be put → its tag. */
  private readonly expected = new Map<string, string>();
  private readonly liveTags = new Map<number, string>();

  private constructor(
    private readonly journal: JournalFile,
    private readonly live: Map<number, Packet>,
    /** Tags of every PUBLISH put since the last compaction (at open: by earlier processes too). */
    private readonly tagsSeen: Set<string>,
  ) {}

  /** Opens `outgoing-<deviceId>` in the state folder (created by the delivery ledger) and reads back what was in flight. */
  static async open(stateDir: string, deviceId: string): Promise<OutgoingStore> {
    const { journal, contents } = await JournalFile.open(path.join(stateDir, `outgoing-${encodeURIComponent(deviceId)}`));
    const live = new Map<number, Packet>();
    const tags = new Map<number, string>();
    const tagsSeen = new Set<string>();
    for (const body of contents.records) {
      const record = packr.unpack(body) as StoreRecord;
      if (record.t === 'put') {
        live.set(record.p.messageId!, revive(record.p));
        if (record.tag !== undefined) {
          tags.set(record.p.messageId!, record.tag);
          tagsSeen.add(record.tag);
        }
      } else {
        live.delete(record.id);
        tags.delete(record.id);
      }
    }
    const store = new OutgoingStore(journal, live, tagsSeen);
    for (const [id, tag] of tags) store.liveTags.set(id, tag);
    return store;
  }

  /** Packet ids in flight: a new process must not give them to new packets before it has sent these again. */
  get messageIds(): number[] {
    return [...this.live.keys()];
  }

  /** The next PUBLISH of these bytes to this topic is stored with `tag`. */
  expectTag(topic: string, payload: Buffer, tag: string): void {
    this.expected.set(fingerprint(topic, payload), tag);
  }

  /** Whether a PUBLISH with this tag was put (so it is delivered from here, or was). */
  hasSeen(tag: string): boolean {
    return this.tagsSeen.has(tag);
  }

  /** Packets sent and not yet completed (at start: what the last process left). */
  get size(): number {
    return this.live.size;
  }

  put(packet: Packet, cb: (err?: Error) => void): this {
    const id = packet.messageId!;
    const fp = packet.cmd === 'publish' ? fingerprint(packet.topic, packet.payload as Buffer) : undefined;
    const tag = fp === undefined ? this.liveTags.get(id) : this.expected.get(fp);
    if (fp !== undefined) this.expected.delete(fp);
    this.live.set(id, packet);
    if (tag === undefined) this.liveTags.delete(id);
    else this.liveTags.set(id, tag);
    this.write({ t: 'put', p: packet, ...(tag === undefined ? {} : { tag }) }, true).then(() => {
      if (tag !== undefined) this.tagsSeen.add(tag);
      cb();
    }, cb);
    return this;
  }

  del(packet: Pick<Packet, 'messageId'>, cb: PacketCallback): this {
    const stored = this.live.get(packet.messageId!);
    if (!stored) {
      cb(new Error('missing packet'));
      return this;
    }
    this.live.delete(packet.messageId!);
    this.liveTags.delete(packet.messageId!);
    // mqtt.js goes on at once: a del that is lost only means one more resend.
    this.write({ t: 'del', id: packet.messageId! }, false).catch(() => undefined);
    cb(undefined, stored);
    return this;
  }

  get(packet: Pick<Packet, 'messageId'>, cb: PacketCallback): this {
    const stored = this.live.get(packet.messageId!);
    if (stored) cb(undefined, stored);
    else cb(new Error('missing packet'));
    return this;
  }

  /** The live packets in the order they were first stored (mqtt.js resends them on connect). */
  createStream(): ReturnType<IStore['createStream']> {
    // mqtt.js types this as readable-stream's Readable; it only calls read(), destroy() and listens for readable/end/error, which node's has.
    return Readable.from([...this.live.values()], { objectMode: true }) as unknown as ReturnType<IStore['createStream']>;
  }

  close(cb: (err?: Error) => void): void {
    this.closed = true;
    this.journal.close().then(() => cb(), cb);
  }

  private async write(record: StoreRecord, sync: boolean): Promise<void> {
    await this.journal.append(packr.pack(record), sync);
    if (++this.records < compactAfterRecords || this.records < 4 * this.live.size || this.closed) return;
    this.records = this.live.size;
    // The ledger noted long ago the tags of completed packets (its note follows the put within milliseconds).
    this.tagsSeen.clear();
    for (const tag of this.liveTags.values()) this.tagsSeen.add(tag);
    await this.journal.rewrite(() =>
      [...this.live].map(([id, p]) => {
        const tag = this.liveTags.get(id);
        return packr.pack({ t: 'put', p, ...(tag === undefined ? {} : { tag }) } satisfies StoreRecord);
      }),
    );
  }
}

function fingerprint(topic: string, payload: Buffer | string): string {
  return createHash('sha1').update(topic).update('\u0000').update(payload).digest('hex');
}

/** msgpack gives binary fields back as Uint8Array; mqtt-packet wants Buffers. */
function revive(packet: Packet): Packet {
  if (packet.cmd !== 'publish') return packet;
  const correlationData = packet.properties?.correlationData;
  return {
    ...packet,
    payload: Buffer.from(packet.payload as Uint8Array),
    ...(correlationData ? { properties: { ...packet.properties, correlationData: Buffer.from(correlationData) } } : {}),
  };
}
