import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { crc32, crc32Table } from "./crc32.js";

describe("crc32", () => {
  it("the table fallback matches the known check value and the native one", () => {
    assert.equal(crc32Table(Buffer.from("123456789")), 0xcbf43926);
    for (let i = 0; i < 50; i++) {
      const b = randomBytes(i * 37);
      assert.equal(crc32Table(b), crc32(b));
    }
  });
});
