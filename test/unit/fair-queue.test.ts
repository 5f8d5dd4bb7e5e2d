/** The waiting line behind every RunQueue: strict priority levels, weighted deficit round robin across tenants within one. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FairQueue } from '../../shared/fair-queue.js';

interface Item {
  tenant: string;
  priority: number;
  name: string;
}

const item = (tenant: string, name: string, priority = 1): Item => ({ tenant, priority, name });
const drain = (queue: FairQueue<Item>) => {
  const names: string[] = [];
  for (let next = queue.shift(); next; next = queue.shift()) names.push(next.name);
  return names;
};

describe('fair queue', () => {
  test('one tenant is served in arrival order', () => {
    const queue = new FairQueue<Item>();
    for (const name of ['1', '2', '3']) queue.push(item('only', name));
    assert.equal(queue.size, 3);
    assert.deepEqual(drain(queue), ['1', '2', '3']);
    assert.equal(queue.shift(), undefined);
  });

  test('weights 3 : 1 serve a backlogged pair in that proportion, and fractional weights carry credit across turns', () => {
    const queue = new FairQueue<Item>((t) => ({ a: 3, b: 1, c: 0.5 })[t]!);
    for (let i = 0; i < 12; i++) queue.push(item('a', 'a'));
    for (let i = 0; i < 4; i++) queue.push(item('b', 'b'));
    assert.deepEqual(drain(queue).join(''), 'aaabaaabaaabaaab');
    for (let i = 0; i < 4; i++) queue.push(item('b', 'b'));
    for (let i = 0; i < 2; i++) queue.push(item('c', 'c'));
    assert.deepEqual(drain(queue).join(''), 'bbcbbc');
  });

  test('a tenant that arrives late joins the round at once instead of waiting behind the backlog', () => {
    const queue = new FairQueue<Item>();
    for (let i = 0; i < 5; i++) queue.push(item('flood', `f${i}`));
    assert.equal(queue.shift()!.name, 'f0');
    queue.push(item('late', 'l0'));
    assert.deepEqual(drain(queue).slice(0, 3), ['l0', 'f1', 'f2'], 'the flood used its turn on f0');
  });

  test('a removed item is gone, counts follow, and an emptied tenant leaves the round', () => {
    const queue = new FairQueue<Item>();
    const b = item('b', 'b0');
    queue.push(item('a', 'a0'));
    queue.push(b);
    queue.push(item('a', 'a1'));
    assert.equal(queue.sizeOf('a'), 2);
    assert.equal(queue.remove(b), true);
    assert.equal(queue.remove(b), false, 'not there any more');
    assert.equal(queue.sizeOf('b'), 0);
    assert.deepEqual(drain(queue), ['a0', 'a1']);
  });

  test('displaces the newest item of the longest line, only for a tenant with at least two fewer', () => {
    const queue = new FairQueue<Item>();
    queue.push(item('a', 'a0', 1));
    queue.push(item('a', 'a1', 2));
    queue.push(item('a', 'a2', 1));
    queue.push(item('b', 'b0'));
    assert.equal(queue.displaceableFor('c')?.name, 'a1', 'the newest at its lowest level');
    assert.equal(queue.displaceableFor('b')?.name, 'a1');
    assert.equal(queue.displaceableFor('a'), undefined, 'never displaces the newcomer itself');
    queue.push(item('b', 'b1'));
    assert.equal(queue.displaceableFor('b'), undefined, '3 against 2: swapping would not be fairer');
    assert.equal(queue.drain().length, 5);
    assert.equal(queue.size, 0);
  });
});
