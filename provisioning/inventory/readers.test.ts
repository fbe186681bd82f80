import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parse } from "ltx";
import { compareVersions, formatAge } from "../cli/inventory-command.js";
import { readReadings } from "./readings.js";
import { NS_TELEMETRY, readStatusItem } from "./status-item.js";

describe("inventory: the status item as a reader sees it", () => {
  it("reads the documented item, and older items with fewer fields", () => {
    const full = parse(
      `<status xmlns="${NS_TELEMETRY}" device="gh-01" state="online" timestamp="2026-11-30T10:00:00.000Z"><agent version="0.2.0"/><firmware version="1.4.2"/><memory rss="62.1" heap="9.3" unit="MiB"/><telemetry state="blocked: forbidden" spooled="1234"/><channel name="temp0" kind="temperature" unit="°C" interval="1000"/><channel name="door" kind="digital-in"/><update state="rolled-back" version="0.2.0" failed="0.3.0" reason="health check: not online within 300000 ms"/></status>`,
    );
    assert.deepEqual(readStatusItem(full), {
      device: "gh-01",
      publishedAt: Date.parse("2026-11-30T10:00:00.000Z"),
      agentVersion: "0.2.0",
      firmwareVersion: "1.4.2",
      telemetry: "blocked: forbidden",
      spooledReadings: 1234,
      memory: { rssMiB: 62.1, heapUsedMiB: 9.3 },
      update: {
        state: "rolled-back",
        version: "0.2.0",
        failed: "0.3.0",
        reason: "health check: not online within 300000 ms",
      },
      channels: [
        { name: "temp0", kind: "temperature", unit: "°C", intervalMs: 1000 },
        { name: "door", kind: "digital-in" },
      ],
    });
    const old = parse(
      `<status xmlns="${NS_TELEMETRY}" device="gh-02" state="online" timestamp="2026-11-30T10:00:00.000Z"><agent version="0.1.0"/></status>`,
    );
    assert.deepEqual(readStatusItem(old), {
      device: "gh-02",
      publishedAt: Date.parse("2026-11-30T10:00:00.000Z"),
      agentVersion: "0.1.0",
      channels: [],
    });
    assert.deepEqual(readStatusItem(undefined), { invalid: "no status item" });
    assert.match((readStatusItem(parse("<reading/>")) as { invalid: string }).invalid, /not a status item/);
    assert.match(
      (readStatusItem(parse(`<status xmlns="${NS_TELEMETRY}" device="x"/>`)) as { invalid: string }).invalid,
      /without device, agent version or timestamp/,
    );
  });

  it("shows ages in human units and orders dotted versions by number", () => {
    assert.equal(formatAge(42_000), "42 s");
    assert.equal(formatAge(5 * 60_000), "5 min");
    assert.equal(formatAge(3 * 3_600_000), "3 h");
    assert.equal(formatAge(90 * 86_400_000), "90 d");
    assert.equal(compareVersions("0.10.2", "0.9.9"), 1);
    assert.equal(compareVersions("1.0", "1.0.0"), 0);
    assert.equal(compareVersions("0.1.0", "0.2.0"), -1);
  });
});

describe("watch: readings as a subscriber reads them", () => {
  it("reads each reading's channel, value, unit, time and quality; skips what is not a reading", () => {
    const item = parse(
      `<readings xmlns="${NS_TELEMETRY}" device="gh-01" first="101" last="105"><numeric seq="101" name="temp0" value="21.5" unit="°C" timestamp="2026-01-05T10:00:00.123Z" momentary="true"/><boolean seq="102" name="door" value="true" timestamp="2026-01-05T10:00:00.130Z" momentary="true"/><string seq="103" name="mode" value="auto" timestamp="2026-01-05T09:59:58.000Z" historical="true" stale="true"/><missing seq="105" name="adc1" unit="V" timestamp="2026-01-05T10:00:00.200Z" momentary="true" error="true"/><junk seq="106"/><numeric seq="x" name="bad" value="1" timestamp="2026-01-05T10:00:00.200Z"/></readings>`,
    );
    assert.deepEqual(
      readReadings(item).map((r) => [r.channel, r.seq, r.value, r.unit, r.quality, r.historical]),
      [
        ["temp0", 101, "21.5", "°C", "good", false],
        ["door", 102, "true", undefined, "good", false],
        ["mode", 103, "auto", undefined, "stale", true],
        ["adc1", 105, undefined, "V", "error", false],
      ],
    );
    assert.deepEqual(readReadings(parse("<status/>")), []);
    assert.deepEqual(readReadings(undefined), []);
  });
});
