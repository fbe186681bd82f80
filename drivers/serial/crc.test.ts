import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { crc16ccitt } from "./crc.js";

describe("crc16ccitt", () => {
  it("matches the CRC-16/CCITT-FALSE check value", () => {
    assert.equal(crc16ccitt(Buffer.from("123456789")), 0x29b1);
  });
  it("covers only the given range and is 0xFFFF on empty input", () => {
    const b = Buffer.from("xx123456789yy");
    assert.equal(crc16ccitt(b, 2, 11), 0x29b1);
    assert.equal(crc16ccitt(Buffer.alloc(0)), 0xffff);
  });
});
