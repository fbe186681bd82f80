import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parse } from "ltx";
import { isAgentError } from "../../kernel/errors.js";
import {
  buildStatusPresence,
  decodeReadings,
  decodeStatus,
  type DeviceStatus,
  encodeReadings,
  encodeStatus,
  itemIdFor,
  NS_TELEMETRY,
  parseItemId,
} from "./codec.js";
import type { Reading } from "./reading.js";

const T = Date.UTC(2026, 0, 5, 10, 0, 0, 123);
const batch: Reading[] = [
  { seq: 101, channelId: "temp0", value: 21.5, unit: "°C", timestamp: T, quality: "good" },
  { seq: 102, channelId: "door", value: true, timestamp: T + 1, quality: "good" },
  { seq: 103, channelId: "mode", value: 'a<b & "c"', timestamp: T + 2, quality: "stale", historical: true },
  { seq: 105, channelId: "adc1", value: null, unit: "V", timestamp: T + 3, quality: "error" },
  { seq: 106, channelId: "big", value: -1.5e-7, timestamp: T + 4, quality: "good" },
];

function payloadError(xml: string): string {
  try {
    decodeReadings(parse(xml));
  } catch (err) {
    assert.ok(isAgentError(err, "payload_invalid"), String(err));
    return err.message;
  }
  assert.fail(`accepted: ${xml}`);
}

describe("telemetry codec", () => {
  it("round-trips a batch through XML text", () => {
    const el = encodeReadings(batch, { device: "sim-01" });
    const text = el.toString();
    assert.match(text, /^<readings xmlns="urn:xmpp-iot-agent:telemetry:0" device="sim-01" first="101" last="106">/);
    assert.match(
      text,
      /<numeric seq="101" name="temp0" value="21.5" unit="°C" timestamp="2026-01-05T10:00:00.123Z" momentary="true"\/>/,
    );
    assert.match(text, /<missing seq="105" name="adc1" unit="V" timestamp="[^"]+" momentary="true" error="true"\/>/);
    const back = decodeReadings(parse(text));
    assert.equal(back.device, "sim-01");
    assert.deepEqual(back.readings, batch);
  });

  it("derives stable item ids from the sequence range", () => {
    assert.equal(itemIdFor({ firstSeq: 101, lastSeq: 106 }), "r-101-106");
    assert.deepEqual(parseItemId("r-101-106"), { firstSeq: 101, lastSeq: 106 });
    for (const bad of ["r-5-4", "r-01-4", "x-1-2", "r-1", "r-1-2-3", "r-99999999999999999-99999999999999999"])
      assert.equal(parseItemId(bad), undefined, bad);
  });

  it("refuses to encode an invalid batch", () => {
    assert.throws(
      () => encodeReadings([]),
      (e: unknown) => isAgentError(e, "reading_invalid"),
    );
    assert.throws(
      () => encodeReadings([{ ...batch[0]!, value: Number.POSITIVE_INFINITY }]),
      (e: unknown) => isAgentError(e, "reading_invalid"),
    );
  });

  it("rejects malformed payloads with typed errors naming the problem", () => {
    const ok = (body: string, first = "1", last = "1") =>
      `<readings xmlns="${NS_TELEMETRY}" first="${first}" last="${last}">${body}</readings>`;
    const f = (attrs: string, name = "numeric") =>
      ok(`<${name} seq="1" name="t" timestamp="2026-01-05T10:00:00.000Z" ${attrs}/>`);
    assert.match(payloadError(`<readings xmlns="urn:other" first="1" last="1"/>`), /expected <readings/);
    assert.match(payloadError(ok("")), /empty/);
    assert.match(payloadError(f('value="1"').replace('first="1"', 'first="x"')), /sequence numbers/);
    assert.match(payloadError(f('value="NaN" momentary="true"')), /decimal/);
    assert.match(payloadError(f('value="0x10" momentary="true"')), /decimal/);
    assert.match(payloadError(f('value="yes" momentary="true"', "boolean")), /boolean/);
    assert.match(payloadError(f('value="1"')), /momentary and historical/);
    assert.match(payloadError(f('value="1" momentary="true" historical="true"')), /momentary and historical/);
    assert.match(payloadError(f('value="1" momentary="maybe"')), /flag momentary/);
    assert.match(payloadError(f('momentary="true"')), /value is required/);
    assert.match(payloadError(f('value="1" momentary="true"', "missing")), /no value/);
    assert.match(payloadError(f('value="1" momentary="true"', "blob")), /unknown element/);
    assert.match(
      payloadError(f('value="1" momentary="true"').replace("2026-01-05T10:00:00.000Z", "2026-02-30T10:00:00.000Z")),
      /real date/,
    );
    assert.match(
      payloadError(f('value="1" momentary="true"').replace("2026-01-05T10:00:00.000Z", "yesterday")),
      /ISO 8601/,
    );
    assert.match(payloadError(f('value="1" momentary="true"').replace('last="1"', 'last="2"')), /do not match/);
    assert.match(
      payloadError(ok('<missing seq="1" name="t" timestamp="2026-01-05T10:00:00.000Z" momentary="true"/>')),
      /good reading needs a value/,
    );
    assert.match(payloadError(ok("stray text")), /text/);
    const two = ok(
      '<numeric seq="2" name="t" value="1" timestamp="2026-01-05T10:00:00.000Z" momentary="true"/><numeric seq="1" name="t" value="1" timestamp="2026-01-05T10:00:00.000Z" momentary="true"/>',
      "2",
      "1",
    );
    assert.match(payloadError(two), /seq order/);
  });

  it("encodes and decodes the status item and builds a presence", () => {
    const s: DeviceStatus = {
      device: "sim-01",
      state: "online",
      timestamp: T,
      agentVersion: "0.1.0",
      firmwareVersion: "1.4.2",
      channels: [
        { id: "temp0", kind: "analog", unit: "°C", intervalMs: 1000 },
        { id: "door", kind: "digital-in" },
      ],
    };
    assert.deepEqual(decodeStatus(parse(encodeStatus(s).toString())), s);
    const updated: DeviceStatus = {
      ...s,
      update: {
        state: "rolled-back",
        version: "0.1.0",
        failed: "0.2.0",
        reason: "3 starts without passing the health check",
      },
    };
    assert.deepEqual(decodeStatus(parse(encodeStatus(updated).toString())), updated);
    assert.throws(
      () => decodeStatus(parse(encodeStatus(updated).toString().replace('state="rolled-back"', 'state="maybe"'))),
      /update needs state/,
    );
    const p = buildStatusPresence(s);
    assert.equal(p.getChildText("status"), "online: 2 channels, firmware 1.4.2, agent 0.1.0");
    assert.equal(p.getChild("device", NS_TELEMETRY)?.attrs.firmware, "1.4.2");
    assert.throws(() => decodeStatus(parse(`<status xmlns="${NS_TELEMETRY}" device="x" state="sleepy"/>`)), /state/);
  });

  it("carries telemetry's state and the spooled readings in the status item; older items have neither", () => {
    const s: DeviceStatus = {
      device: "sim-01",
      state: "online",
      timestamp: T,
      agentVersion: "0.1.0",
      channels: [],
      telemetry: "blocked: forbidden",
      spooledReadings: 1234,
    };
    const el = encodeStatus(s);
    assert.deepEqual(el.getChild("telemetry")?.attrs, { state: "blocked: forbidden", spooled: "1234" });
    assert.deepEqual(decodeStatus(parse(el.toString())), s);
    const old = parse(
      `<status xmlns="${NS_TELEMETRY}" device="x" state="online" timestamp="2026-01-05T10:00:00.000Z"><agent version="1"/></status>`,
    );
    const d = decodeStatus(old);
    assert.equal("telemetry" in d || "spooledReadings" in d, false);
    assert.throws(
      () =>
        decodeStatus(
          parse(
            `<status xmlns="${NS_TELEMETRY}" device="x" state="online" timestamp="2026-01-05T10:00:00.000Z"><agent version="1"/><telemetry spooled="-3"/></status>`,
          ),
        ),
      /spooled/,
    );
  });

  it("carries the agent's memory in MiB in the status item, and never in presence", () => {
    const s: DeviceStatus = {
      device: "sim-01",
      state: "online",
      timestamp: T,
      agentVersion: "0.1.0",
      channels: [{ id: "temp0", kind: "analog" }],
      memory: { rssMiB: 62.1, heapUsedMiB: 9 },
    };
    const el = encodeStatus(s);
    assert.deepEqual(el.getChild("memory")?.attrs, { rss: "62.1", heap: "9.0", unit: "MiB" });
    assert.deepEqual(decodeStatus(parse(el.toString())), s);
    const presence = buildStatusPresence(s).toString();
    assert.doesNotMatch(presence, /memory|62\.1|MiB/);
    // An older agent's item has no <memory/>: still a status.
    const { memory: _, ...withoutMemory } = s;
    assert.equal("memory" in decodeStatus(parse(encodeStatus(withoutMemory).toString())), false);
    const item = (memory: string) =>
      parse(
        `<status xmlns="${NS_TELEMETRY}" device="x" state="online" timestamp="2026-01-05T10:00:00.000Z"><agent version="1"/>${memory}</status>`,
      );
    assert.throws(() => decodeStatus(item('<memory rss="62.1" heap="9.3" unit="MB"/>')), /unit/);
    assert.throws(() => decodeStatus(item('<memory rss="-1" heap="9.3" unit="MiB"/>')), /rss and heap/);
    assert.throws(() => decodeStatus(item('<memory rss="62.1" unit="MiB"/>')), /rss and heap/);
  });
});
