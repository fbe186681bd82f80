import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { silentLogger } from "../kernel/log.js";
import { FileFastTokenStore } from "./fast-token.js";

const token = { mechanism: "HT-SHA-256-NONE", secret: "secret-token:fast-1", expiresAt: 1_900_000_000_000 };

describe("FileFastTokenStore", () => {
  it("keeps the client id and the token in a 0600 file across instances; dropping removes only the token", () => {
    const file = join(mkdtempSync(join(tmpdir(), "fast-")), "t.json");
    const a = new FileFastTokenStore(file, silentLogger);
    const id = a.clientId();
    a.saveToken(token);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const b = new FileFastTokenStore(file, silentLogger);
    assert.equal(b.clientId(), id);
    assert.deepEqual(b.token(), token);
    b.dropToken("test");
    const c = new FileFastTokenStore(file, silentLogger);
    assert.equal(c.token(), undefined);
    assert.equal(c.clientId(), id);
  });

  it("starts afresh from a corrupt or foreign file, and writes nothing until the id is needed", () => {
    const dir = mkdtempSync(join(tmpdir(), "fast-"));
    const file = join(dir, "t.json");
    writeFileSync(file, "{not json");
    const s = new FileFastTokenStore(file, silentLogger);
    assert.equal(s.token(), undefined);
    assert.equal(JSON.parse(readFileSync(file, "utf8")).format, "iot-agent-fast-token");
    const absent = join(dir, "none.json");
    const t = new FileFastTokenStore(absent, silentLogger);
    assert.throws(() => statSync(absent));
    t.clientId();
    assert.ok(statSync(absent).isFile());
    writeFileSync(
      file,
      JSON.stringify({ format: "iot-agent-fast-token", version: 1, clientId: "x", token: { secret: "" } }),
    );
    assert.equal(new FileFastTokenStore(file, silentLogger).token(), undefined, "an empty secret is no token");
  });
});
