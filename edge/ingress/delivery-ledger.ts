/**
 * What the agent owes its requesters, kept in a journal in its state folder
 * (journal-file.ts) so it outlives a crash: every accepted request until it
 * is answered, and every answer for `delivery.answerRetentionMs` after, keyed
 * by the reply topic + request id (the requester's identity as the agent can
 * see it).
 *
 * Records (msgpack bodies):
 * - `accepted` {k, at, request, route}: the request, before its PUBACK (synced);
 * - `route` {k, route}: another reply address that wants this answer (synced);
 * - `answered` {k, at, answer}: the final answer, before it is published (synced);
 * - `published` {k, r}: the answer on route `r` is in the durable outgoing
 *   store, which delivers it from there (not
 *   synced: losing it to a power cut means one more publish, not a loss).
 * Reading is idempotent (a record seen twice changes nothing), so compaction
 * may write a record that an append then writes again.
 *
 * Bounds, in bytes of what is kept (requests, answers, addresses, plus a
 * fixed overhead per entry), at most `delivery.journalMaxBytes`:
 * - answers are evicted oldest first to make room, and dropped once older
 *   than the retention window; an evicted id is unknown again (a repeat is
 *   computed anew);
 * - requests not yet answered are never evicted: when they alone fill the
 *   bound, a new request waits unacknowledged (the broker keeps it) until
 *   one is answered;
 * - the file is compacted (live records rewritten) when it is over twice
 *   what it keeps and over `compactMinBytes`, so it stays under about twice
 *   the bound.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Packr } from 'msgpackr';
import type { Logger } from '../../shared/log.js';
import type { AgentRequest } from '../request.js';
import { JournalFile } from './journal-file.js';
import type { PayloadFormat, ResponsePayload } from './payload.js';
import type { ReplyRoute } from './reply-route.js';

export interface DeliverySettings {
  journalMaxBytes: number;
  answerRetentionMs: number;
}

/** A reply address and the format its request came in (a repeat may come in another). */
export interface StoredRoute extends ReplyRoute {
  format: PayloadFormat;
  /** The W3C trace context of the request that named this route (request-trace.ts); absent in journals of earlier versions. */
  traceparent?: string;
}

export interface LedgerEntry {
  key: string;
  /** Epoch ms the request first reached the agent; its deadline counts from here. */
  receivedAt: number;
  /** Until answered. */
  request?: AgentRequest;
  answer?: ResponsePayload;
  answeredAt?: number;
  /** Route id → route, and whether the answer there is in the outgoing store. */
  routes: Map<string, { route: StoredRoute; published: boolean }>;
  /** Journal bytes of the request (until answered) and of the answer. */
  requestBytes: number;
  answerBytes: number;
  /** What the entry counts against delivery.journalMaxBytes. */
  bytes: number;
}

type JournalRecord =
  | { t: 'accepted'; k: string; at: number; request?: AgentRequest; route: StoredRoute }
  | { t: 'route'; k: string; route: StoredRoute }
  | { t: 'answered'; k: string; at: number; answer: ResponsePayload }
  | { t: 'published'; k: string; r: string };

const packr = new Packr({ useRecords: false, mapsAsObjects: true });
const entryOverheadBytes = 128;
const compactMinBytes = 1024 * 1024;

export function routeId(route: ReplyRoute): string {
  return `${route.topic}\u0000${route.correlationData ? Buffer.from(route.correlationData).toString('hex') : ''}\u0000${route.correlationId ?? ''}`;
}

export class DeliveryLedger {
  private readonly entries = new Map<string, LedgerEntry>();
  private liveBytes = 0;
  private pendingBytes = 0;
  private roomWaiters: (() => void)[] = [];
  private compacting: Promise<void> | undefined;

  private constructor(
    private readonly journal: JournalFile,
    private readonly settings: DeliverySettings,
    private readonly log: Logger,
  ) {}

  /** Opens `<stateDir>/journal-<deviceId>`, creating the folder, and reads what it holds. */
  static async open(stateDir: string, deviceId: string, settings: DeliverySettings, log: Logger): Promise<{ ledger: DeliveryLedger; tornBytes: number }> {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const file = path.join(stateDir, `journal-${encodeURIComponent(deviceId)}`);
    const { journal, contents } = await JournalFile.open(file);
    const ledger = new DeliveryLedger(journal, settings, log);
    for (const body of contents.records) ledger.apply(packr.unpack(body) as JournalRecord, body.length);
    ledger.expire(Date.now());
    ledger.evictFor(0);
    return { ledger, tornBytes: contents.tornBytes };
  }

  get file(): string {
    return this.journal.file;
  }

  stats(): { entries: number; keptBytes: number; fileBytes: number; syncs: number } {
    return { entries: this.entries.size, keptBytes: this.liveBytes, fileBytes: this.journal.bytes, syncs: this.journal.syncs };
  }

  get(key: string): LedgerEntry | undefined {
    return this.entries.get(key);
  }

  /** Entries accepted and not answered, oldest first (to run again after a restart). */
  unanswered(): LedgerEntry[] {
    return [...this.entries.values()].filter((e) => !e.answer);
  }

  /** Answers whose publish on a route the broker never acknowledged. */
  unpublished(): { entry: LedgerEntry; route: StoredRoute }[] {
    return [...this.entries.values()].flatMap((entry) => (entry.answer ? [...entry.routes.values()].filter((r) => !r.published).map(({ route }) => ({ entry, route })) : []));
  }

  /** Resolves once a request of this size fits beside the unanswered ones (answers are evicted for it). */
  async whenRoom(requestBytes: number): Promise<void> {
    const need = requestBytes + entryOverheadBytes;
    if (need > this.settings.journalMaxBytes) throw new Error(`a request of ${requestBytes} bytes does not fit in delivery.journalMaxBytes (${this.settings.journalMaxBytes})`);
    while (this.pendingBytes + need > this.settings.journalMaxBytes) await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    this.evictFor(need);
  }

  /** Records an accepted request; resolves once it is on disk (then it may be acknowledged). */
  accept(key: string, request: AgentRequest | undefined, route: StoredRoute, receivedAt: number): Promise<void> {
    return this.write({ t: 'accepted', k: key, at: receivedAt, request, route }, true);
  }

  addRoute(key: string, route: StoredRoute): Promise<void> {
    return this.write({ t: 'route', k: key, route }, true);
  }

  /** Records the final answer (the request itself is dropped); resolves once it is on disk. */
  answer(key: string, answer: ResponsePayload): Promise<void> {
    return this.write({ t: 'answered', k: key, at: Date.now(), answer }, true);
  }

  published(key: string, route: StoredRoute): Promise<void> {
    return this.write({ t: 'published', k: key, r: routeId(route) }, false);
  }

  /** Drops answers older than the retention window. */
  expire(now: number): void {
    for (const entry of this.entries.values()) {
      if (entry.answeredAt !== undefined && now - entry.answeredAt > this.settings.answerRetentionMs) this.drop(entry);
    }
  }

  async close(): Promise<void> {
    await this.compacting;
    await this.journal.close();
  }

  private async write(record: JournalRecord, sync: boolean): Promise<void> {
    const body = packr.pack(record);
    this.apply(record, body.length);
    await this.journal.append(body, sync);
    // In the background: nothing waits for a compaction but the next append.
    if (!this.compacting && this.journal.bytes > Math.max(compactMinBytes, 2 * this.liveBytes)) {
      this.compacting = this.journal
        .rewrite(() => this.liveRecords().map((r) => packr.pack(r)))
        .catch((err: Error) => this.log.error({ err: err.message, journal: this.journal.file }, 'cannot compact the journal; it keeps growing until a compaction succeeds'))
        .finally(() => (this.compacting = undefined));
    }
  }

  private apply(record: JournalRecord, bodyBytes: number): void {
    const entry = this.entries.get(record.k);
    if (record.t === 'accepted') {
      if (entry) return;
      const created: LedgerEntry = { key: record.k, receivedAt: record.at, request: record.request, routes: new Map(), requestBytes: record.request ? bodyBytes : 0, answerBytes: 0, bytes: 0 };
      this.entries.set(record.k, created);
      this.pendingBytes += created.requestBytes;
      this.addRouteTo(created, record.route);
      this.resize(created);
      return;
    }
    if (!entry) return;
    if (record.t === 'route') this.addRouteTo(entry, record.route);
    else if (record.t === 'published') {
      const route = entry.routes.get(record.r);
      if (route) route.published = true;
    } else if (!entry.answer) {
      entry.answer = record.answer;
      entry.answeredAt = record.at;
      entry.answerBytes = bodyBytes;
      this.pendingBytes -= entry.requestBytes;
      entry.requestBytes = 0;
      delete entry.request;
      for (const wake of this.roomWaiters.splice(0)) wake();
    }
    this.resize(entry);
  }

  private addRouteTo(entry: LedgerEntry, route: StoredRoute): void {
    const id = routeId(route);
    if (!entry.routes.has(id)) entry.routes.set(id, { route, published: false });
  }

  /** Evicts answers, oldest first, until `need` more bytes fit. */
  private evictFor(need: number): void {
    for (const entry of this.entries.values()) {
      if (this.liveBytes + need <= this.settings.journalMaxBytes) return;
      if (entry.answer) this.drop(entry);
    }
  }

  private drop(entry: LedgerEntry): void {
    this.entries.delete(entry.key);
    this.liveBytes -= entry.bytes;
    this.pendingBytes -= entry.requestBytes;
  }

  private resize(entry: LedgerEntry): void {
    const routeBytes = [...entry.routes.keys()].reduce((sum, id) => sum + id.length, 0);
    const bytes = entryOverheadBytes + entry.key.length + routeBytes + entry.requestBytes + entry.answerBytes;
    this.liveBytes += bytes - entry.bytes;
    entry.bytes = bytes;
  }

  private liveRecords(): JournalRecord[] {
    return [...this.entries.values()].flatMap((entry): JournalRecord[] => {
      const [first, ...more] = [...entry.routes.values()];
      return [
        { t: 'accepted', k: entry.key, at: entry.receivedAt, ...(entry.request ? { request: entry.request } : {}), route: first!.route },
        ...more.map(({ route }): JournalRecord => ({ t: 'route', k: entry.key, route })),
        ...(entry.answer ? [{ t: 'answered', k: entry.key, at: entry.answeredAt!, answer: entry.answer } as const] : []),
        ...[...entry.routes].filter(([, r]) => r.published).map(([r]): JournalRecord => ({ t: 'published', k: entry.key, r })),
      ];
    });
  }
}
