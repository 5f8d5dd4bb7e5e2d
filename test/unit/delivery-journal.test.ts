/**
 * The request journal and what the agent keeps in it (journal-file.ts,
 * delivery-ledger.ts), on real files in a temporary folder.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { DeliveryLedger, type StoredRoute } from '../../edge/ingress/delivery-ledger.js';
import { JournalFile } from '../../edge/ingress/journal-file.js';
import { createLogger } from '../../shared/log.js';

const log = createLogger('test', process.env.SPLITINFER_LOG_LEVEL ?? 'silent');
const root = mkdtempSync(path.join(tmpdir(), 'splitinfer-journal-'));
let folders = 0;
const freshDir = () => path.join(root, `state-${++folders}`);
const route = (correlation = 'c1'): StoredRoute => ({ topic: 'app/replies', correlationData: Buffer.from(correlation), format: 'msgpack' });
const request = (id: string, bytes = 16) => ({ id, inputs: { image: new Uint8Array(bytes).fill(7) } });
const answer = (id: string) => ({ id, results: { text: { intent: 'greeting' } }, placement: {}, timings: {} });
const settings = { journalMaxBytes: 64 * 1024 * 1024, answerRetentionMs: 86_400_000 };

after(() => rmSync(root, { recursive: true, force: true }));

describe('journal file', () => {
  test('reads back what was appended, and cuts a torn last record left by a crash', async () => {
    const file = path.join(root, 'torn.journal');
    const { journal } = await JournalFile.open(file);
    await journal.append(Buffer.from('first'), true);
    await journal.append(Buffer.from('second'), true);
    await journal.close();
    const whole = statSync(file).size;
    // A crash in the middle of the third write: its header and half its body.
    const header = Buffer.alloc(8);
    header.writeUInt32LE(100, 0);
    appendFileSync(file, Buffer.concat([header, Buffer.from('third, torn')]));
    const reopened = await JournalFile.open(file);
    assert.deepEqual(reopened.contents.records.map(String), ['first', 'second']);
    assert.equal(reopened.contents.tornBytes, 8 + 11);
    assert.equal(statSync(file).size, whole, 'the torn tail is cut off the file');
    await reopened.journal.append(Buffer.from('after'), true);
    await reopened.journal.close();
    assert.deepEqual((await JournalFile.open(file)).contents.records.map(String), ['first', 'second', 'after']);
  });

  test('a record whose bytes were damaged ends the journal there', async () => {
    const file = path.join(root, 'damaged.journal');
    const { journal } = await JournalFile.open(file);
    for (const text of ['one', 'two', 'three']) await journal.append(Buffer.from(text), false);
    await journal.close();
    const bytes = readFileSync(file);
    bytes[8 + 3 + 8] ^= 0xff;
    writeFileSync(file, bytes);
    assert.deepEqual((await JournalFile.open(file)).contents.records.map(String), ['one']);
  });

  test('appends made together share one fsync (group commit)', async () => {
    const { journal } = await JournalFile.open(path.join(root, 'group.journal'));
    await Promise.all(Array.from({ length: 50 }, (_, i) => journal.append(Buffer.from(`r${i}`), true)));
    assert.ok(journal.syncs <= 3, `${journal.syncs} fsyncs for 50 appends made at once`);
    await journal.close();
  });
});

describe('delivery ledger', () => {
  test('an accepted request outlives a restart until its answer is journaled; the answer outlives it too', async () => {
    const dir = freshDir();
    const first = (await DeliveryLedger.open(dir, 'dev-1', settings, log)).ledger;
    await first.accept('k1', request('r1'), route(), 1_000);
    await first.accept('k2', request('r2'), route('c2'), 2_000);
    await first.answer('k1', answer('r1'));
    await first.close();
    const second = (await DeliveryLedger.open(dir, 'dev-1', settings, log)).ledger;
    assert.deepEqual(second.unanswered().map((e) => [e.key, e.receivedAt, e.request?.id]), [['k2', 2_000, 'r2']]);
    assert.deepEqual(second.get('k1')?.answer, answer('r1'));
    assert.equal(second.get('k1')?.request, undefined, 'an answered request is not kept');
    assert.deepEqual(second.unpublished().map(({ entry }) => entry.key), ['k1'], 'the answer was never acknowledged by the broker');
    await second.published('k1', route());
    await second.close();
    const third = (await DeliveryLedger.open(dir, 'dev-1', settings, log)).ledger;
    assert.deepEqual(third.unpublished(), []);
    await third.close();
  });

  test('a repeat on another reply address is kept with the entry', async () => {
    const dir = freshDir();
    const ledger = (await DeliveryLedger.open(dir, 'dev-1', settings, log)).ledger;
    await ledger.accept('k', request('r'), route('a'), 1);
    await ledger.addRoute('k', route('b'));
    await ledger.addRoute('k', route('b'));
    await ledger.close();
    const reopened = (await DeliveryLedger.open(dir, 'dev-1', settings, log)).ledger;
    assert.equal(reopened.get('k')?.routes.size, 2);
    await reopened.close();
  });

  test('answers past the retention window are dropped', async () => {
    const dir = freshDir();
    const ledger = (await DeliveryLedger.open(dir, 'dev-1', { ...settings, answerRetentionMs: 1_000 }, log)).ledger;
    await ledger.accept('old', request('old'), route(), Date.now());
    await ledger.answer('old', answer('old'));
    ledger.expire(Date.now() + 2_000);
    assert.equal(ledger.get('old'), undefined);
    await ledger.close();
  });

  test('when full, the oldest answers are evicted; unanswered requests never are, and a new one waits for room', async () => {
    const dir = freshDir();
    const bounded = { ...settings, journalMaxBytes: 1024 * 1024 };
    const ledger = (await DeliveryLedger.open(dir, 'dev-1', bounded, log)).ledger;
    const big = 300 * 1024;
    for (const id of ['a1', 'a2']) {
      await ledger.whenRoom(big);
      await ledger.accept(id, request(id, big), route(id), Date.now());
      await ledger.answer(id, { ...answer(id), results: { image: new Uint8Array(big) } });
    }
    for (const id of ['p1', 'p2', 'p3']) {
      await ledger.whenRoom(big);
      await ledger.accept(id, request(id, big), route(id), Date.now());
    }
    assert.equal(ledger.get('a1'), undefined, 'the oldest answer made room');
    assert.equal(ledger.get('a2'), undefined);
    assert.deepEqual(ledger.unanswered().map((e) => e.key), ['p1', 'p2', 'p3']);
    let admitted = false;
    const waiting = ledger.whenRoom(big).then(() => (admitted = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(admitted, false, 'three unanswered requests fill the bound');
    await ledger.answer('p1', answer('p1'));
    await waiting;
    assert.ok(ledger.stats().keptBytes <= bounded.journalMaxBytes);
    await assert.rejects(ledger.whenRoom(2 * 1024 * 1024), /does not fit in delivery\.journalMaxBytes/);
    await ledger.close();
  });

  test('the file is compacted to what is kept, and reads back the same', async () => {
    const dir = freshDir();
    const ledger = (await DeliveryLedger.open(dir, 'dev-1', settings, log)).ledger;
    for (let i = 0; i < 40; i++) {
      await ledger.accept(`k${i}`, request(`r${i}`, 64 * 1024), route(`c${i}`), Date.now());
      await ledger.answer(`k${i}`, answer(`r${i}`));
    }
    await ledger.accept('open', request('open', 1024), route('open'), Date.now());
    // Wait for the background compaction the appends started.
    await ledger.close();
    const reopened = (await DeliveryLedger.open(dir, 'dev-1', settings, log)).ledger;
    const { fileBytes, keptBytes } = reopened.stats();
    assert.ok(fileBytes < 1024 * 1024, `${fileBytes} bytes after compaction (2.5 MiB were appended), ${keptBytes} kept`);
    assert.deepEqual(reopened.unanswered().map((e) => e.key), ['open']);
    assert.deepEqual(reopened.get('k39')?.answer, answer('r39'));
    await reopened.close();
  });

  test('fsync cost per journaled request (measured, reported)', async () => {
    const ledger = (await DeliveryLedger.open(freshDir(), 'dev-1', settings, log)).ledger;
    const n = 100;
    const started = performance.now();
    for (let i = 0; i < n; i++) await ledger.accept(`k${i}`, request(`r${i}`, 4096), route(`c${i}`), Date.now());
    const serialMs = (performance.now() - started) / n;
    const groupStarted = performance.now();
    await Promise.all(Array.from({ length: n }, (_, i) => ledger.accept(`g${i}`, request(`g${i}`, 4096), route(`g${i}`), Date.now())));
    const groupMs = (performance.now() - groupStarted) / n;
    console.log(`journal: ${serialMs.toFixed(3)} ms per request one at a time (one fsync each), ${groupMs.toFixed(3)} ms per request when ${n} arrive together (group commit)`);
    await ledger.close();
  });
});
