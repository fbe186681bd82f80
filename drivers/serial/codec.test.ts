import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DriverError } from "../types.js";
import {
  decodeError,
  decodeList,
  decodeMilli,
  decodeSensorValue,
  decodeSet,
  encodeError,
  encodeFrame,
  encodeList,
  encodeMilli,
  encodeName,
  encodeSensorValue,
  encodeSet,
  FRAME_OVERHEAD,
} from "./codec.js";

describe("serial codec", () => {
  it("encodes a frame with sync, version, type, seq, length and CRC", () => {
    const f = encodeFrame({ type: 0x10, seq: 7, payload: Buffer.from("temperature") });
    assert.equal(f.length, FRAME_OVERHEAD + 11);
    assert.deepEqual([...f.subarray(0, 7)], [0xa5, 0x5a, 1, 0x10, 7, 0, 11]);
  });

  it("produces the exact bytes of the example in docs/serial-protocol.md", () => {
    const hex = (b: Buffer) => b.toString("hex").toUpperCase();
    assert.equal(
      hex(encodeFrame({ type: 0x10, seq: 7, payload: Buffer.from("temperature") })),
      "A55A011007000B74656D7065726174757265C995",
    );
    assert.equal(
      hex(encodeFrame({ type: 0x90, seq: 7, payload: encodeSensorValue({ value: 21.5, ageMs: 0 }) })),
      "A55A0190070008000053FC00000000FAD5",
    );
  });

  it("refuses oversize payloads and non-byte fields with typed errors", () => {
    assert.throws(
      () => encodeFrame({ type: 1, seq: 1, payload: Buffer.alloc(20) }, 10),
      (e: unknown) => e instanceof DriverError && e.code === "serial_frame_too_large",
    );
    assert.throws(
      () => encodeFrame({ type: 256, seq: 1, payload: Buffer.alloc(0) }),
      (e: unknown) => e instanceof DriverError && e.code === "driver_bad_argument",
    );
    assert.throws(() => encodeName(""), DriverError);
    assert.throws(() => encodeName("x".repeat(33)), DriverError);
    assert.throws(() => encodeMilli(3e9), DriverError);
  });

  it("round-trips every payload", () => {
    assert.deepEqual(decodeSensorValue(encodeSensorValue({ value: -12.345, ageMs: 250 })), {
      value: -12.345,
      ageMs: 250,
    });
    assert.deepEqual(decodeSet(encodeSet("fan", 1)), { name: "fan", value: 1 });
    assert.equal(decodeMilli(encodeMilli(0.5)), 0.5);
    const inv = { sensors: ["temperature", "humidity"], actuators: ["fan"] };
    assert.deepEqual(decodeList(encodeList(inv)), inv);
    assert.deepEqual(decodeError(encodeError({ code: 3, message: "gone" })), { code: 3, message: "gone" });
  });

  it("rejects malformed payloads with serial_bad_response", () => {
    const bad = (fn: () => unknown) =>
      assert.throws(fn, (e: unknown) => e instanceof DriverError && e.code === "serial_bad_response");
    bad(() => decodeSensorValue(Buffer.alloc(7)));
    bad(() => decodeSet(Buffer.from([5, 1, 2])));
    bad(() => decodeList(Buffer.from([2, 3, 0x61])));
    bad(() => decodeList(Buffer.from([0, 0, 9])));
    bad(() => decodeError(Buffer.alloc(0)));
    bad(() => decodeMilli(Buffer.alloc(3)));
  });
});
