import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_COMMANDS_CONFIG, commandsConfigSchema } from "./config.js";
import { Ctx, INVALID } from "../../kernel/schema-dsl.js";
import { CommandDefinitionError, CommandRegistry, changedNote, paramToField, Values } from "./registry.js";

describe("command registry", () => {
  it("refuses duplicate and malformed nodes", () => {
    const r = new CommandRegistry();
    const def = { node: "status", name: "S", run: async () => ({}) };
    r.register(def);
    assert.throws(() => r.register(def), CommandDefinitionError);
    assert.throws(() => r.register({ ...def, node: "has space" }), CommandDefinitionError);
    assert.throws(() => r.register({ ...def, node: "" }), CommandDefinitionError);
  });

  it("maps parameters to XEP-0004 fields with XEP-0122 validation", () => {
    assert.deepEqual(
      paramToField({ name: "n", type: "integer", label: "N", min: 1, max: 5, default: 2, required: true }),
      {
        var: "n",
        label: "N",
        values: ["2"],
        required: true,
        type: "text-single",
        validate: { datatype: "xs:integer", range: { min: 1, max: 5 } },
      },
    );
    assert.deepEqual(paramToField({ name: "b", type: "boolean", label: "B", default: true }).values, ["1"]);
    assert.equal(paramToField({ name: "s", type: "secret", label: "S" }).type, "text-private");
    assert.deepEqual(paramToField({ name: "t", type: "text", label: "T", pattern: "[a-z]+" }).validate, {
      datatype: "xs:string",
      regex: "[a-z]+",
    });
    assert.deepEqual(paramToField({ name: "m", type: "multiline", label: "M", default: "a\nb" }).values, ["a", "b"]);
    assert.equal(
      paramToField({ name: "c", type: "choices", label: "C", options: [{ value: "x" }] }).type,
      "list-multi",
    );
  });

  it("gives handlers typed values and calls a wrong type a bug", () => {
    const v = new Values({ n: 3, s: "x", b: false, l: ["a"], u: undefined });
    assert.equal(v.number("n"), 3);
    assert.equal(v.boolean("b"), false);
    assert.deepEqual(v.list("l"), ["a"]);
    assert.equal(v.optionalNumber("u"), undefined);
    assert.throws(() => v.string("n"), CommandDefinitionError);
    assert.throws(() => v.number("missing"), CommandDefinitionError);
  });

  it("words changes one way", () => {
    assert.deepEqual(changedNote("output relay", "off", "on"), {
      type: "info",
      text: "Changed output relay: off -> on",
    });
    assert.equal(changedNote("x", undefined, 5).text, "Changed x: unset -> 5");
  });
});

describe("commands config section", () => {
  it("has defaults and bounds", () => {
    assert.equal(DEFAULT_COMMANDS_CONFIG.sessionTimeoutMs, 300_000);
    assert.equal(DEFAULT_COMMANDS_CONFIG.audit.maxFiles, 5);
    const ctx = new Ctx();
    assert.equal(commandsConfigSchema.parse({ maxSessionsPerRequester: 0, audit: { maxBytes: 10 } }, ctx), INVALID);
    assert.deepEqual(
      ctx.issues.map((i) => i.path.join(".")),
      ["maxSessionsPerRequester", "audit.maxBytes"],
    );
  });
});
