import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { inspect } from "node:util";
import { SaltedPasswordCache } from "./cache.js";

const salt = Buffer.from("salt");

describe("SaltedPasswordCache", () => {
  it("returns what was set, as a copy", () => {
    const cache = new SaltedPasswordCache();
    const value = Buffer.alloc(20, 9);
    cache.set("SHA-1", "pw", salt, 4096, value);
    value.fill(0); // the caller zeroing its buffer must not affect the cache
    const got = cache.get("SHA-1", "pw", salt, 4096)!;
    assert.deepEqual(got, Buffer.alloc(20, 9));
    got.fill(1);
    assert.deepEqual(cache.get("SHA-1", "pw", salt, 4096), Buffer.alloc(20, 9));
  });

  it("keys on hash, password, salt and iterations", () => {
    const cache = new SaltedPasswordCache();
    cache.set("SHA-1", "pw", salt, 4096, Buffer.alloc(20, 1));
    assert.equal(cache.get("SHA-256", "pw", salt, 4096), undefined);
    assert.equal(cache.get("SHA-1", "pw2", salt, 4096), undefined);
    assert.equal(cache.get("SHA-1", "pw", Buffer.from("salu"), 4096), undefined);
    assert.equal(cache.get("SHA-1", "pw", salt, 4097), undefined);
    assert.ok(cache.get("SHA-1", "pw", salt, 4096));
  });

  it("is bounded and evicts the least recently used entry", () => {
    const cache = new SaltedPasswordCache({ maxEntries: 2 });
    cache.set("SHA-1", "a", salt, 1, Buffer.alloc(1, 1));
    cache.set("SHA-1", "b", salt, 1, Buffer.alloc(1, 2));
    cache.get("SHA-1", "a", salt, 1); // a is now the most recent
    cache.set("SHA-1", "c", salt, 1, Buffer.alloc(1, 3));
    assert.equal(cache.size, 2);
    assert.equal(cache.get("SHA-1", "b", salt, 1), undefined);
    assert.ok(cache.get("SHA-1", "a", salt, 1));
    assert.ok(cache.get("SHA-1", "c", salt, 1));
  });

  it("overwriting a key does not grow it", () => {
    const cache = new SaltedPasswordCache();
    cache.set("SHA-1", "a", salt, 1, Buffer.alloc(1, 1));
    cache.set("SHA-1", "a", salt, 1, Buffer.alloc(1, 2));
    assert.equal(cache.size, 1);
    assert.deepEqual(cache.get("SHA-1", "a", salt, 1), Buffer.alloc(1, 2));
  });

  it("clear() forgets everything", () => {
    const cache = new SaltedPasswordCache();
    cache.set("SHA-1", "a", salt, 1, Buffer.alloc(1, 1));
    cache.clear();
    assert.equal(cache.size, 0);
    assert.equal(cache.get("SHA-1", "a", salt, 1), undefined);
  });

  it("prints and serialises as a count only", () => {
    const cache = new SaltedPasswordCache();
    cache.set("SHA-1", "hunter2", salt, 1, Buffer.from("SALTEDSECRET"));
    const printed = `${inspect(cache, { showHidden: true, depth: 5 })} ${JSON.stringify(cache)}`;
    assert.ok(!printed.includes("hunter2"));
    assert.ok(!printed.includes("SALTEDSECRET"));
    assert.ok(!printed.includes(Buffer.from("SALTEDSECRET").toString("hex")));
    assert.match(printed, /entries: 1/);
  });

  it("two instances derive different keys for the same password", () => {
    const a = new SaltedPasswordCache();
    a.set("SHA-1", "pw", salt, 1, Buffer.alloc(1, 1));
    const b = new SaltedPasswordCache();
    assert.equal(b.get("SHA-1", "pw", salt, 1), undefined);
  });

  it("refuses a nonsensical bound", () => {
    assert.throws(() => new SaltedPasswordCache({ maxEntries: 0 }), RangeError);
    assert.throws(() => new SaltedPasswordCache({ maxEntries: 1.5 }), RangeError);
  });
});
