import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bool, Ctx, def, formatPath, type Infer, INVALID, int, obj, opt, str, tagged } from "./schema-dsl.js";

const output = tagged(
  "source",
  {
    gpio: { line: int({ min: 0 }), activeLow: def(bool(), false) },
    serial: { link: str(), actuator: str(), note: opt(str()) },
    mqtt: { mqtt: obj({ commandTopic: str(), retain: def(bool(), false) }), note: opt(str()) },
  },
  { noun: "output", article: { mqtt: "an" } },
);
type Output = Exclude<Infer<typeof output>, symbol>;

function parse(raw: unknown): { value: Output | typeof INVALID; problems: Record<string, string> } {
  const ctx = new Ctx();
  const value = output.parse(raw, ctx);
  return { value, problems: Object.fromEntries(ctx.issues.map((i) => [formatPath(i.path), i.message])) };
}

/** Compiles only if the union narrows on its tag and types other cases' keys as absent. */
function describeOutput(o: Output): string {
  const absent: undefined = o.source === "gpio" ? o.link : undefined;
  switch (o.source) {
    case "gpio":
      return `line ${o.line + 0}${o.activeLow ? " (active low)" : ""}${absent ?? ""}`;
    case "serial":
      return `${o.link}/${o.actuator}`;
    case "mqtt":
      return o.mqtt.commandTopic;
  }
}

describe("tagged: a mapping whose tag picks its keys", () => {
  it("parses each case with its own defaults and nothing of the others", () => {
    const gpio = parse({ source: "gpio", line: 17 });
    assert.deepEqual(gpio, { value: { source: "gpio", line: 17, activeLow: false }, problems: {} });
    const mqtt = parse({ source: "mqtt", mqtt: { commandTopic: "plug/set" } });
    assert.deepEqual(mqtt.value, {
      source: "mqtt",
      mqtt: { commandTopic: "plug/set", retain: false },
      note: undefined,
    });
    assert.equal(describeOutput(gpio.value as Output), "line 17");
    assert.equal(describeOutput(mqtt.value as Output), "plug/set");
  });

  it("refuses a key of another case by naming the cases it belongs to, and a key of none as unknown", () => {
    const { value, problems } = parse({ source: "gpio", line: 1, link: "mcu0", note: "x", colour: "red" });
    assert.equal(value, INVALID);
    assert.deepEqual(problems, {
      link: "applies to serial outputs only",
      note: "applies to serial and mqtt outputs only",
      colour: "unknown key (expected one of: source, line, activeLow)",
    });
  });

  it("names a missing key of the chosen case with the case, and what a missing mapping needs", () => {
    assert.deepEqual(parse({ source: "gpio" }).problems, { line: "is required for a gpio output (a whole number)" });
    assert.deepEqual(parse({ source: "mqtt" }).problems, {
      mqtt: "is required for an mqtt output (mqtt.commandTopic at least)",
    });
    // Values inside a case are checked by their own schemas, with the full path.
    assert.deepEqual(parse({ source: "gpio", line: -1 }).problems, { line: "must be >= 0, got -1" });
    assert.deepEqual(parse({ source: "mqtt", mqtt: { retain: true } }).problems, {
      "mqtt.commandTopic": "is required (a string)",
    });
  });

  it("names a missing or unknown tag, and still judges the keys no case knows", () => {
    assert.deepEqual(parse({ line: 3, colour: "red" }).problems, {
      source: "is required (one of gpio, serial, mqtt; it decides which other keys apply)",
      colour: "unknown key (expected one of: source, line, activeLow, link, actuator, note, mqtt)",
    });
    assert.deepEqual(parse({ source: "zigbee", line: 3 }).problems, {
      source: 'must be one of "gpio", "serial", "mqtt", got string "zigbee"',
    });
    assert.deepEqual(parse(null).problems, {
      source: "is required (one of gpio, serial, mqtt; it decides which other keys apply)",
    });
    assert.deepEqual(parse([1]).problems, { "(root)": "must be a mapping, got a list" });
  });

  it("reports every problem at once, each at its own key", () => {
    const ctx = new Ctx();
    const outputs = obj({ a: output, b: output });
    outputs.parse({ a: { source: "serial", link: "x" }, b: { source: "gpio", line: "x", actuator: "y" } }, ctx);
    assert.deepEqual(
      ctx.issues.map((i) => `${formatPath(i.path)}: ${i.message}`),
      [
        "a.actuator: is required for a serial output (a string)",
        "b.actuator: applies to serial outputs only",
        'b.line: must be a whole number, got string "x"',
      ],
    );
  });

  it("shows every case's keys, the tag first, as its shape (for the config reference)", () => {
    assert.deepEqual(Object.keys(output.shape ?? {}), [
      "source",
      "line",
      "activeLow",
      "link",
      "actuator",
      "note",
      "mqtt",
    ]);
    assert.equal(output.shape?.source?.describe, "one of gpio, serial, mqtt");
    assert.equal(output.defaultValue, undefined);
  });
});
