import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LineParser } from "./line.js";

function collect(p: LineParser): string[] {
  const out: string[] = [];
  p.on("data", (l: string) => out.push(l));
  return out;
}

describe("LineParser", () => {
  it("splits lines across chunks and strips CR", () => {
    const p = new LineParser();
    const out = collect(p);
    p.write(Buffer.from("temp=21.5\r\nhum"));
    p.write(Buffer.from("=40\n"));
    assert.deepEqual(out, ["temp=21.5", "hum=40"]);
  });

  it("drops overlong lines up to the next delimiter, bounded, and counts them", () => {
    const p = new LineParser({ maxLength: 8 });
    const out = collect(p);
    p.write(Buffer.from("a".repeat(5)));
    p.write(Buffer.from("b".repeat(5000)));
    p.write(Buffer.from("c\nok=1\n"));
    assert.deepEqual(out, ["ok=1"]);
    assert.equal(p.counters.overlongLines, 1);
    assert.ok(p.counters.droppedBytes >= 5000);
  });

  it("supports a multi-byte delimiter split across chunks", () => {
    const p = new LineParser({ delimiter: "\r\n" });
    const out = collect(p);
    p.write(Buffer.from("x=1\r"));
    p.write(Buffer.from("\ny=2\r\n"));
    assert.deepEqual(out, ["x=1", "y=2"]);
  });
});
