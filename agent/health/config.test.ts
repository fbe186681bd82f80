import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError } from "../../kernel/errors.js";
import { parseConfig } from "../config/load.js";

const HEAD = `device:
  id: sim-01
xmpp:
  jid: sim-01@iot.test
  password: s3cret
`;

describe("memory config", () => {
  it("defaults: warn at 0.8 of the limit, check every 30 s, the limit from the cgroup", () => {
    const { config } = parseConfig(HEAD, "/etc/agent/agent.yaml");
    assert.deepEqual(config.memory, { warnFraction: 0.8, checkIntervalMs: 30_000, limitBytes: undefined });
  });

  it("takes a limit for a device not run under systemd", () => {
    const { config } = parseConfig(
      `${HEAD}memory:\n  warnFraction: 0.9\n  checkIntervalMs: 5000\n  limitBytes: 134217728\n`,
      "a.yaml",
    );
    assert.deepEqual(config.memory, { warnFraction: 0.9, checkIntervalMs: 5000, limitBytes: 134_217_728 });
  });

  it("refuses corrupt values with the config error naming each key and line", () => {
    const text = `${HEAD}memory:\n  warnFraction: 1.5\n  checkIntervalMs: 10\n  limitBytes: 0\n  warnPercent: 80\n`;
    try {
      parseConfig(text, "a.yaml");
      assert.fail("expected a ConfigError");
    } catch (err) {
      assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`);
      assert.equal(err.code, "config_invalid");
      const problems = err.context.problems as Array<{ path: string; line?: number; message: string }>;
      assert.deepEqual(problems.map((p) => [p.path, p.line, p.message]).sort(), [
        ["memory.checkIntervalMs", 8, "must be >= 1000, got 10"],
        ["memory.limitBytes", 9, "must be >= 1, got 0"],
        ["memory.warnFraction", 7, "must be <= 1, got 1.5"],
        ["memory.warnPercent", 10, "unknown key (expected one of: warnFraction, checkIntervalMs, limitBytes)"],
      ]);
    }
  });
});
