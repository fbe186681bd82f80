import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isProvisioningError } from "./errors.js";
import {
  applyTags,
  describeSelector,
  formatTags,
  MAX_TAGS_PER_DEVICE,
  parseTag,
  parseTags,
  selectDevices,
  validTags,
} from "./selector.js";
import { addProvisioned, type DeviceRecord, emptyStore, markEnrolled, markRevoked } from "./store.js";

const NOW = new Date("2026-01-10T12:00:00Z");

function fleet() {
  const data = emptyStore();
  const add = (id: string, tags: Record<string, string>) =>
    addProvisioned(data, { id, jid: `${id}@iot.test`, credentialPath: "invite", bundleId: `b-${id}`, tags }, NOW);
  add("gh-1", { site: "greenhouse-2", hw: "pi4" });
  add("gh-2", { site: "greenhouse-2", hw: "pi5" });
  add("barn-1", { site: "barn", hw: "pi4" });
  add("loose", {});
  markEnrolled(data, "gh-1", NOW);
  markEnrolled(data, "barn-1", NOW);
  markRevoked(data, "gh-2", NOW);
  return data;
}

const ids = (ds: DeviceRecord[]) => ds.map((d) => d.id);

describe("tags and selectors", () => {
  it("parses KEY=VALUE and refuses what a shell or a table would mangle", () => {
    assert.deepEqual(parseTag("site=greenhouse-2"), ["site", "greenhouse-2"]);
    assert.deepEqual(parseTag("fw.ver=1.4.2"), ["fw.ver", "1.4.2"]);
    for (const bad of ["site", "=x", "Site=x", "site=", "site=a b", "site=a,b", "site=a=b", `${"k".repeat(33)}=x`])
      assert.throws(
        () => parseTag(bad),
        (e: unknown) => isProvisioningError(e, "usage"),
        bad,
      );
    assert.deepEqual(parseTags(["a=1", "b=2", "a=1"]), { a: "1", b: "2" });
    assert.throws(
      () => parseTags(["a=1", "a=2"]),
      (e: unknown) => isProvisioningError(e, "usage"),
    );
  });

  it("selects by id, tags (all must match), state, or all; sorted by id", () => {
    const data = fleet();
    assert.deepEqual(ids(selectDevices(data, { all: true })), ["barn-1", "gh-1", "gh-2", "loose"]);
    assert.deepEqual(ids(selectDevices(data, {})), ["barn-1", "gh-1", "gh-2", "loose"]);
    assert.deepEqual(ids(selectDevices(data, { tags: { site: "greenhouse-2" } })), ["gh-1", "gh-2"]);
    assert.deepEqual(ids(selectDevices(data, { tags: { site: "greenhouse-2", hw: "pi4" } })), ["gh-1"]);
    assert.deepEqual(ids(selectDevices(data, { tags: { hw: "pi4" }, states: ["enrolled"] })), ["barn-1", "gh-1"]);
    assert.deepEqual(ids(selectDevices(data, { states: ["provisioned", "revoked"] })), ["gh-2", "loose"]);
    assert.deepEqual(ids(selectDevices(data, { devices: ["loose", "gh-1"], tags: { hw: "pi4" } })), ["gh-1"]);
    assert.throws(
      () => selectDevices(data, { devices: ["gh-1", "ghost"] }),
      (e: unknown) => isProvisioningError(e, "device_unknown") && /ghost/.test((e as Error).message),
    );
    assert.equal(
      describeSelector({
        devices: ["a"],
        tags: { site: "x" },
        states: ["enrolled"],
        credentialOlderThanMs: 90 * 86_400_000,
      }),
      "--device a --tag site=x --state enrolled --older-than 90d",
    );
    // Credential age: since the last rotation, else enrolment, else provisioning.
    data.devices["barn-1"]!.rotatedAt = "2026-04-01T00:00:00.000Z";
    const later = new Date("2026-05-01T00:00:00.000Z");
    assert.deepEqual(ids(selectDevices(data, { credentialOlderThanMs: 60 * 86_400_000 }, later)), [
      "gh-1",
      "gh-2",
      "loose",
    ]);
  });

  it("applies changes: sorted keys, replace, remove, no empty object, bounded", () => {
    const d = fleet().devices["gh-1"]!;
    assert.equal(applyTags(d, { row: "3", hw: "pi5" }, []), true);
    assert.deepEqual(Object.entries(d.tags!), [
      ["hw", "pi5"],
      ["row", "3"],
      ["site", "greenhouse-2"],
    ]);
    assert.equal(applyTags(d, { hw: "pi5" }, []), false, "the same value is no change");
    assert.equal(formatTags(d.tags), "hw=pi5 row=3 site=greenhouse-2");
    assert.equal(applyTags(d, {}, ["hw", "row", "site"]), true);
    assert.equal(d.tags, undefined);
    assert.equal(formatTags(d.tags), "-");
    const many = Object.fromEntries(Array.from({ length: MAX_TAGS_PER_DEVICE + 1 }, (_, i) => [`k${i}`, "v"]));
    assert.throws(
      () => applyTags(d, many, []),
      (e: unknown) => isProvisioningError(e, "usage"),
    );
    assert.equal(validTags({ a: "1" }), true);
    assert.equal(validTags({ A: "1" }), false);
    assert.equal(validTags({ a: 1 }), false);
    assert.equal(validTags(many), false);
  });
});
