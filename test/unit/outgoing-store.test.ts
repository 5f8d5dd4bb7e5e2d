/**
 * mqtt.js's outgoing store kept in the state folder (outgoing-store.ts), on
 * real files: what was in flight comes back with its packet ids and bytes,
 * completed packets do not, and the file is compacted to what is live.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import type { IPublishPacket, Packet } from 'mqtt';
import { OutgoingStore } from '../../edge/ingress/outgoing-store.js';
import { tempStateDir } from '../helpers/state-dir.js';

const state = tempStateDir();
after(() => state.remove());

const publish = (messageId: number): IPublishPacket => ({
  cmd: 'publish',
  messageId,
  qos: 2,
  dup: false,
  retain: false,
  topic: 'replies/app',
  payload: Buffer.from(`answer ${messageId}`),
  properties: { correlationData: Buffer.from(`c-${messageId}`) },
});
const put = (store: OutgoingStore, packet: Packet) => new Promise<void>((resolve, reject) => store.put(packet, (err) => (err ? reject(err) : resolve())));
const del = (store: OutgoingStore, messageId: number) => new Promise<Packet | undefined>((resolve, reject) => store.del({ messageId }, (err, packet) => (err ? reject(err) : resolve(packet))));
const close = (store: OutgoingStore) => new Promise<void>((resolve, reject) => store.close((err) => (err ? reject(err) : resolve())));

test('packets in flight come back after a restart with their ids and bytes; completed ones do not', async () => {
  const store = await OutgoingStore.open(state.dir, 'dev-1');
  await put(store, publish(7));
  await put(store, publish(8));
  // PUBREC of 8: mqtt.js replaces the PUBLISH with its PUBREL.
  await put(store, { cmd: 'pubrel', messageId: 8 });
  await put(store, publish(9));
  assert.equal((await del(store, 9))?.messageId, 9);
  await assert.rejects(del(store, 9), /missing packet/);
  await close(store);

  const reopened = await OutgoingStore.open(state.dir, 'dev-1');
  const packets = (await reopened.createStream().toArray()) as Packet[];
  assert.deepEqual(packets.map((p) => [p.cmd, p.messageId]), [['publish', 7], ['pubrel', 8]]);
  const again = packets[0] as IPublishPacket;
  assert.ok(Buffer.isBuffer(again.payload) && Buffer.isBuffer(again.properties?.correlationData), 'binary fields are Buffers again, as mqtt-packet needs');
  assert.equal(again.payload.toString(), 'answer 7');
  assert.equal(again.properties?.correlationData?.toString(), 'c-7');
  await new Promise<void>((resolve) => reopened.get({ messageId: 8 }, (err, packet) => (assert.equal(err, undefined), assert.equal(packet?.cmd, 'pubrel'), resolve())));
  await close(reopened);
});

test("a tagged PUBLISH is known after a restart, even once completed: the ledger does not publish that answer again", async () => {
  const store = await OutgoingStore.open(state.dir, 'dev-3');
  const packet = publish(5);
  store.expectTag(packet.topic, packet.payload as Buffer, 'request-1 on route-1');
  await put(store, packet);
  await put(store, { cmd: 'pubrel', messageId: 5 });
  await del(store, 5);
  assert.equal(store.hasSeen('request-1 on route-1'), true);
  await close(store);
  const reopened = await OutgoingStore.open(state.dir, 'dev-3');
  assert.equal(reopened.hasSeen('request-1 on route-1'), true);
  assert.equal(reopened.hasSeen('request-2 on route-1'), false);
  assert.deepEqual(reopened.messageIds, []);
  await close(reopened);
});

test('the file is compacted to the live packets', async () => {
  const store = await OutgoingStore.open(state.dir, 'dev-2');
  const file = path.join(state.dir, 'outgoing-dev-2');
  await put(store, publish(1));
  await del(store, 1);
  await put(store, publish(2));
  const bytesPerPair = statSync(file).size / 1.5;
  // Put and completed concurrently, as answers go out: group commit keeps the syncs few.
  await Promise.all(
    Array.from({ length: 6_000 }, async (_, i) => {
      await put(store, publish(i + 3));
      await del(store, i + 3);
    }),
  );
  // The dels were written without waiting; one more synced put comes after them and the compaction they started.
  await new Promise((resolve) => setTimeout(resolve, 100));
  await put(store, publish(60_000));
  assert.equal(store.size, 2);
  await close(store);
  const { size } = statSync(file);
  assert.ok(size < (6_000 * bytesPerPair) / 2, `the file holds ${size} bytes for one live packet; 6,000 put/del pairs take ${Math.round(6_000 * bytesPerPair)}`);
  const reopened = await OutgoingStore.open(state.dir, 'dev-2');
  assert.deepEqual(((await reopened.createStream().toArray()) as Packet[]).map((p) => p.messageId), [2, 60_000]);
  await close(reopened);
});
