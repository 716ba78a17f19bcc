import { test } from "node:test";
import assert from "node:assert/strict";

import { Random } from "../../src/sim/random.js";

test("the same seed gives the same stream; different seeds differ", () => {
  const draw = (seed: number): number[] => {
    const random = new Random(seed);
    return Array.from({ length: 16 }, () => random.nextUint32());
  };
  assert.deepEqual(draw(42), draw(42));
  assert.notDeepEqual(draw(42), draw(43));
});

test("bounded draws stay in range and cover it", () => {
  const random = new Random(7);
  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) {
    const value = random.between(3, 9);
    assert.ok(value >= 3 && value <= 9);
    seen.add(value);
    const float = random.float();
    assert.ok(float >= 0 && float < 1);
  }
  assert.equal(seen.size, 7);
});

test("forked streams are independent of later draws from the parent", () => {
  const parent = new Random(5);
  const child = parent.fork();
  const fromChild = child.nextUint32();
  const again = new Random(5).fork();
  assert.equal(again.nextUint32(), fromChild);
});

test("shuffle is a permutation", () => {
  const random = new Random(9);
  const items = Array.from({ length: 20 }, (_, i) => i);
  const shuffled = random.shuffle([...items]);
  assert.deepEqual([...shuffled].sort((a, b) => a - b), items);
});
