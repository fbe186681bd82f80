import assert from "node:assert/strict";
import { it } from "node:test";
import { forEachBounded } from "./bounded.js";

it("forEachBounded: every item once, never more than the limit in flight", async () => {
  const seen: number[] = [];
  let inFlight = 0;
  let max = 0;
  await forEachBounded([...Array(20).keys()], 3, async (i) => {
    inFlight++;
    max = Math.max(max, inFlight);
    await new Promise((r) => setTimeout(r, 1));
    seen.push(i);
    inFlight--;
  });
  assert.deepEqual(
    [...seen].sort((a, b) => a - b),
    [...Array(20).keys()],
  );
  assert.equal(max, 3);
  await forEachBounded([], 4, async () => assert.fail("no items, no calls"));
});
