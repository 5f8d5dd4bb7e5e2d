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
 * Records (msgpack): `put` {p: packet} synced before mqtt.js writes the
 * packet, `del` {id} not synced (losing one to a power cut means one more
 * resend). The file is compacted to the live packets once it holds many more
 * records than live ones.
 */
import { Readable } from 'node:stream';
import path from 'node:path';
import type { IStore, Packet, PacketCallback } from 'mqtt';
import { Packr } from 'msgpackr';
import { JournalFile } from './journal-file.js';

type StoreRecord = { t: 'put'; p: Packet } | { t: 'del'; id: number };

const packr = new Packr({ useRecords: false, mapsAsObjects: true });
const compactAfterRecords = 10_000;

export class OutgoingStore implements IStore {
  private records = 0;
  private closed = false;

  private constructor(
    private readonly journal: JournalFile,
    private readonly live: Map<number, Packet>,
  ) {}

  /** Opens `outgoing-<deviceId>` in the state folder (created by the delivery ledger) and reads back what was in flight. */
  static async open(stateDir: string, deviceId: string): Promise<OutgoingStore> {
    const { journal, contents } = await JournalFile.open(path.join(stateDir, `outgoing-${encodeURIComponent(deviceId)}`));
    const live = new Map<number, Packet>();
    for (const body of contents.records) {
      const record = packr.unpack(body) as StoreRecord;
      if (record.t === 'put') live.set(record.p.messageId!, revive(record.p));
      else live.delete(record.id);
    }
    return new OutgoingStore(journal, live);
  }

  /** Packets sent and not yet completed (at start: what the last process left). */
  get size(): number {
    return this.live.size;
  }

  put(packet: Packet, cb: (err?: Error) => void): this {
    this.live.set(packet.messageId!, packet);
    this.write({ t: 'put', p: packet }, true).then(() => cb(), cb);
    return this;
  }

  del(packet: Pick<Packet, 'messageId'>, cb: PacketCallback): this {
    const stored = this.live.get(packet.messageId!);
    if (!stored) {
      cb(new Error('missing packet'));
      return this;
    }
    this.live.delete(packet.messageId!);
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
    await this.journal.rewrite(() => [...this.live.values()].map((p) => packr.pack({ t: 'put', p } satisfies StoreRecord)));
  }
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
