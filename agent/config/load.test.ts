import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError } from "../../kernel/errors.js";
import { parseConfig } from "./load.js";

const GOOD = `device:
  id: sim-01
  dataDir: ./state
xmpp:
  jid: sim-01@iot.test
  password: s3cret
  server: 127.0.0.1:5222
operators:
  - jid: alice@iot.test
`;

function problems(fn: () => unknown): Array<{ path: string; line?: number; env?: string; message: string }> {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`);
    return err.context.problems as Array<{ path: string; line?: number; env?: string; message: string }>;
  }
  assert.fail("expected a ConfigError");
}

describe("config loader", () => {
  it("fills defaults, resolves relative paths and keeps the password out of the config", () => {
    const { config, password } = parseConfig(GOOD, "/etc/agent/agent.yaml");
    assert.equal(password, "s3cret");
    assert.equal(config.xmpp.password, undefined);
    assert.equal(config.device.dataDir, "/etc/agent/state");
    assert.equal(config.xmpp.streamManagement.maxQueue, 1000);
    assert.deepEqual(config.operators, [{ jid: "alice@iot.test", commands: ["*"] }]);
  });

  it("names the key and the line of each problem, all at once", () => {
    const text = GOOD.replace(
      "server: 127.0.0.1:5222",
      "server: nowhere\n  streamManagement:\n    maxQueue: -3\n  colour: red",
    );
    const ps = problems(() => parseConfig(text, "a.yaml"));
    const byPath = Object.fromEntries(ps.map((p) => [p.path, p]));
    assert.equal(byPath["xmpp.server"]?.line, 7);
    assert.match(byPath["xmpp.server"]!.message, /host:port/);
    assert.equal(byPath["xmpp.streamManagement.maxQueue"]?.line, 9);
    assert.match(byPath["xmpp.colour"]!.message, /unknown key/);
  });

  it("reports a missing required key at its parent's line", () => {
    const ps = problems(() => parseConfig("device:\n  id: x\nxmpp:\n  password: p\n", "a.yaml"));
    assert.deepEqual(
      ps.map((p) => [p.path, p.line]),
      [["xmpp.jid", 4]],
    );
  });

  it("reports YAML syntax errors with a line", () => {
    const ps = problems(() => parseConfig("device:\n  id: [x\nxmpp: {", "a.yaml"));
    assert.ok(ps.length > 0 && ps[0]!.line !== undefined);
  });

  it("rejects duplicate keys", () => {
    const ps = problems(() => parseConfig(`${GOOD}device:\n  id: again\n`, "a.yaml"));
    assert.ok(ps.some((p) => /unique|duplicate/i.test(p.message)));
  });

  it("applies environment overrides and names the variable in errors", () => {
    const { config, password } = parseConfig(GOOD, "a.yaml", {
      AGENT_JID: "other@iot.test",
      AGENT_PASSWORD: "fromenv",
      AGENT_OPERATORS: "bob@iot.test, carol@iot.test",
      AGENT_PUBSUB_SERVICE: "pubsub.iot.test",
    });
    assert.equal(config.xmpp.jid, "other@iot.test");
    assert.equal(password, "fromenv");
    assert.deepEqual(
      config.operators.map((o) => o.jid),
      ["bob@iot.test", "carol@iot.test"],
    );
    assert.equal(config.pubsub.service, "pubsub.iot.test");
    const ps = problems(() => parseConfig(GOOD, "a.yaml", { AGENT_SERVER: "bad" }));
    assert.equal(ps[0]?.env, "AGENT_SERVER");
  });

  it("requires some password", () => {
    const ps = problems(() => parseConfig(GOOD.replace("  password: s3cret\n", ""), "a.yaml"));
    assert.match(ps[0]!.message, /AGENT_PASSWORD/);
  });

  it("refuses a top-level list", () => {
    assert.throws(() => parseConfig("- a\n- b\n", "a.yaml"), /mapping/);
  });
});
