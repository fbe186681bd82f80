import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createLogger } from "../../kernel/log.js";
import { SequenceCounter } from "./sequence.js";

const root = mkdtempSync(join(tmpdir(), "seq-"));
after(() => rmSync(root, { recursive: true, force: true }));

describe("SequenceCounter", () => {
  it("persists a block mark before handing numbers out, and restarts above everything handed out", () => {
    const path = join(root, "a", "sequence.json");
    const c = new SequenceCounter({ path, blockSize: 10 });
    c.open();
    assert.equal(JSON.parse(readFileSync(path, "utf8")).next, 10);
    const got = Array.from({ length: 15 }, () => c.next());
    assert.deepEqual(
      got,
      Array.from({ length: 15 }, (_, i) => i),
    );
    assert.equal(JSON.parse(readFileSync(path, "utf8")).next, 20, "second block reserved at number 10");
    // "Crash": a new counter on the same file never reuses 0..14.
    const d = new SequenceCounter({ path, blockSize: 10 });
    d.open();
    assert.equal(d.next(), 20);
  });

  it("honours a floor (e.g. the spool's last seq + 1)", () => {
    const path = join(root, "b.json");
    const c = new SequenceCounter({ path, floor: 500 });
    c.open();
    assert.equal(c.next(), 500);
  });

  it("a corrupt file restarts from the wall clock, logged, never below the floor", () => {
    const path = join(root, "c.json");
    writeFileSync(path, "{garbage");
    const lines: string[] = [];
    const c = new SequenceCounter({
      path,
      now: () => 1_700_000_000_000,
      logger: createLogger({ write: (l) => lines.push(l) }),
    });
    c.open();
    assert.equal(c.next(), 1_700_000_000_000);
    assert.match(lines.join(""), /sequence file corrupt/);
  });

  it("refuses use before open and bad options", () => {
    assert.throws(() => new SequenceCounter({ path: join(root, "d.json") }).next(), /before open/);
    assert.throws(() => new SequenceCounter({ path: join(root, "e.json"), blockSize: 0 }), /blockSize/);
  });

  it("fails loudly when the mark cannot be persisted", () => {
    // A regular file where a directory should be (not /proc: Node's recursive mkdir spins there).
    writeFileSync(join(root, "plainfile"), "");
    const c = new SequenceCounter({ path: join(root, "plainfile", "seq.json") });
    assert.throws(
      () => c.open(),
      (e: unknown) => (e as { code?: string }).code !== undefined,
    );
  });
});
