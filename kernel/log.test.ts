import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AgentError } from "./errors.js";
import { createLogger } from "./log.js";

function capture(level: "debug" | "info" = "info") {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ level, write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>), now: () => 0 });
  return { log, lines };
}

describe("logger", () => {
  it("writes one JSON object per line with bound fields", () => {
    const { log, lines } = capture();
    log.child({ component: "xmpp" }).info("online", { jid: "a@b/c" });
    assert.deepEqual(lines, [
      { t: "1970-01-01T00:00:00.000Z", level: "info", msg: "online", component: "xmpp", jid: "a@b/c" },
    ]);
  });

  it("redacts secrets at any depth, keeps booleans and absent values", () => {
    const { log, lines } = capture();
    log.info("cfg", {
      password: "hunter2",
      xmpp: { passwordFile: "/x", allowPlain: false, auth: { token: "t" } },
      list: [{ secret: 1 }],
    });
    const out = JSON.stringify(lines[0]);
    assert.ok(!out.includes("hunter2") && !out.includes('"token":"t"') && !out.includes("/x"), out);
    assert.match(out, /"allowPlain":false/);
    assert.match(out, /"secret":"\[redacted\]"/);
  });

  it("serialises errors with code and context, and survives unprintable fields", () => {
    const { log, lines } = capture();
    log.error("failed", { error: new AgentError("auth_failed", "no", { condition: "not-authorized" }) });
    assert.deepEqual((lines[0]!.error as Record<string, unknown>).code, "auth_failed");
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    log.warn("cyclic", { big: 10n as unknown as number });
    assert.equal(lines[1]!.msg, "cyclic");
  });

  it("drops lines below the level", () => {
    const { log, lines } = capture("info");
    log.debug("noise");
    assert.equal(lines.length, 0);
    assert.equal(log.isLevelEnabled("debug"), false);
  });
});
