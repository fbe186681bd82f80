/**
 * The whole agent as a user runs it: config file -> createAgent (composition root) -> real Prosody,
 * a real slixmpp operator, the simulated board. Telemetry, commands, presence, status and a clean
 * stop, plus the CLI's answers to bad input.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { main as cli } from "../../agent/cli.js";
import type { Agent } from "../../agent/main.js";
import { decodeReadings } from "../../agent/telemetry/codec.js";
import { parse } from "ltx";
import { OperatorClient, OperatorError } from "../harness/operator.js";
import { type ProsodyHandle, startProsody } from "../harness/prosody.js";
import { makeTempDir, type TempDir } from "../harness/tmp.js";
import { agentConfigHead, startComposedAgent } from "../harness/composed-agent.js";
import { waitFor } from "../xmpp/helpers.js";

const DEVICE_PASS = "device-pass-1";

function configText(p: ProsodyHandle, dir: string): string {
  return `${agentConfigHead({
    id: "e2e-01",
    dataDir: join(dir, "state"),
    port: p.port,
    caFile: p.caFile,
    xmpp: ["keepalive: { idleMs: 2000, timeoutMs: 2000 }", "reconnect: { initialDelayMs: 50, maxDelayMs: 500 }"],
  })}hardware: { gpio: sim, serial: sim }
board:
  serial:
    mcu0: { path: /dev/ttySIM0 }
  outputs:
    relay: { source: gpio, line: 17 }
    fan: { source: serial, link: mcu0, actuator: fan }
  inputs:
    door: { line: 27 }
  channels:
    temperature: { source: serial, link: mcu0, sensor: temperature, kind: temperature, unit: "°C", intervalMs: 300 }
    door-contact: { source: gpio, input: door, kind: contact }
telemetry:
  batch: { maxReadings: 5, maxAgeMs: 300 }
  publish: { maxItems: 10 }
`;
}

function textOf(notes: { text: string }[]): string {
  return notes.map((n) => n.text).join("\n");
}

describe("the composed agent against Prosody and a slixmpp operator", () => {
  let prosody: ProsodyHandle;
  let dir: TempDir;
  let agent: Agent;
  let op: OperatorClient;
  let deviceJid: string;

  before(async () => {
    prosody = await startProsody({ pubsubAdmins: ["e2e-01@iot.test"] });
    await prosody.register("e2e-01", DEVICE_PASS);
    await prosody.register("operator", "op-pass");
    await prosody.register("stranger", "st-pass");
    dir = makeTempDir();
    ({ agent, jid: deviceJid } = await startComposedAgent({
      dir: dir.path,
      config: configText(prosody, dir.path),
      password: DEVICE_PASS,
    }));
    op = await OperatorClient.login(prosody, "operator", "op-pass", { name: "e2e-operator" });
  });

  after(async () => {
    await op?.stop();
    await agent?.stop();
    await prosody?.stop();
    dir?.remove();
  });

  it("publishes readings with units and increasing sequence numbers to the telemetry node", async () => {
    await waitFor(() => (agent.telemetry?.status()?.publisher.publishedItems ?? 0) > 0, 10_000, "a first publish");
    await op.subscribe("pubsub.iot.test", "devices/e2e-01/telemetry");
    const seqs: number[] = [];
    await waitFor(
      () => {
        seqs.length = 0;
        for (const ev of op.pubsubItems()) {
          if (ev.node !== "devices/e2e-01/telemetry" || !ev.payload) continue;
          for (const r of decodeReadings(parse(ev.payload)).readings) {
            if (r.channelId === "temperature") {
              assert.equal(r.unit, "°C");
              seqs.push(r.seq);
            }
          }
        }
        return seqs.length >= 3;
      },
      10_000,
      "three temperature readings at the subscriber",
    );
    for (let i = 1; i < seqs.length; i++)
      assert.ok(seqs[i]! > seqs[i - 1]!, `sequence must increase: ${seqs.join(",")}`);
  });

  it("lists the built-in commands for an operator and nothing for a stranger", async () => {
    const nodes = (await op.listCommands(deviceJid)).map((c) => c.node);
    for (const n of [
      "status",
      "list-channels",
      "read",
      "set-output",
      "set-sampling",
      "serial-command",
      "restart-drivers",
    ]) {
      assert.ok(nodes.includes(n), `${n} in ${nodes.join(",")}`);
    }
    const stranger = await OperatorClient.login(prosody, "stranger", "st-pass", { name: "e2e-stranger" });
    try {
      assert.deepEqual(await stranger.listCommands(deviceJid), []);
    } finally {
      await stranger.stop();
    }
  });

  it("set-output switches the simulated relay pin and says what changed", async () => {
    const res = await op.execute(deviceJid, "set-output", { output: "relay", value: true });
    assert.equal(res.status, "completed");
    assert.match(textOf(res.notes), /relay/);
    assert.equal(agent.sim!.gpio.level(17), 1);
  });

  it("status reports the link, stream management, spool and pubsub nodes", async () => {
    const res = await op.execute(deviceJid, "status");
    assert.equal(res.status, "completed");
    const fields = Object.fromEntries((res.form?.fields ?? []).map((f) => [f.var, f.values.join(" ")]));
    const all = JSON.stringify(fields);
    assert.match(all, /online/);
    assert.match(all, /devices\/e2e-01\/telemetry/);
    assert.match(all, /iot-sim-mcu/);
  });

  it("a stranger's flood of refused commands with huge node names neither fills nor erases the audit trail", async () => {
    // An operator record first: it must survive whatever the stranger sends.
    const mine = await op.execute(deviceJid, "set-output", { output: "relay", value: true });
    assert.equal(mine.status, "completed");
    const stranger = await OperatorClient.login(prosody, "stranger", "st-pass", { name: "e2e-flooder" });
    const N = 12;
    try {
      for (let i = 0; i < N; i++)
        await assert.rejects(stranger.execute(deviceJid, `${"x".repeat(3000)}-${i}`), /forbidden/);
    } finally {
      await stranger.stop();
    }
    const read = (name: string) =>
      readFileSync(join(dir.path, "state", name), "utf8")
        .trim()
        .split("\n")
        .filter(Boolean);
    await waitFor(() => read("audit-refused.jsonl").length >= 5, 5000, "the first refusals written");
    const main = read("audit.jsonl").map((l) => JSON.parse(l) as { requester: string; node: string; reason?: string });
    assert.ok(
      main.some((r) => r.requester.startsWith("operator@") && r.node === "set-output"),
      "the operator's record is still in audit.jsonl",
    );
    assert.equal(main.filter((r) => r.requester.startsWith("stranger@")).length, 0, "no refusal in audit.jsonl");
    const refused = read("audit-refused.jsonl");
    assert.equal(refused.length, 5, "5 written in full this minute, the rest counted for the summary");
    assert.ok(
      refused.every((l) => l.length < 2000),
      "no line carries the 3 KB node name",
    );
  });

  it("tells its software name and version to operators only; a stranger learns nothing (XEP-0092, disco)", async () => {
    const mine = await op.iq(deviceJid, "get", '<query xmlns="jabber:iq:version"/>');
    assert.match(mine.xml, /<name>xmpp-iot-agent<\/name>/);
    const stranger = await OperatorClient.login(prosody, "stranger", "st-pass", { name: "e2e-curious" });
    try {
      await assert.rejects(
        stranger.iq(deviceJid, "get", '<query xmlns="jabber:iq:version"/>'),
        (e: unknown) => e instanceof OperatorError && e.condition === "service-unavailable",
      );
      // A real command node and a made-up one answer the same.
      const asked = async (node: string) => {
        try {
          await stranger.discoInfo(deviceJid, node);
          return "answered";
        } catch (e) {
          return e instanceof OperatorError ? e.condition : String(e);
        }
      };
      assert.equal(await asked("set-output"), "item-not-found");
      assert.equal(await asked("no-such-command"), "item-not-found");
      // The identity's name is the software's: an operator reads it, a stranger does not.
      assert.deepEqual(
        (await stranger.discoInfo(deviceJid)).identities.map((i) => i.name ?? null),
        [null],
      );
      assert.ok((await op.discoInfo(deviceJid)).identities.some((i) => i.name === "xmpp-iot-agent"));
    } finally {
      await stranger.stop();
    }
  });

  it("set-sampling persists the new interval", async () => {
    const res = await op.execute(deviceJid, "set-sampling", { channel: "temperature", intervalMs: 1000 });
    assert.equal(res.status, "completed");
    const saved = (await import("node:fs")).readFileSync(join(dir.path, "state", "sampling.json"), "utf8");
    assert.match(saved, /"intervalMs": 1000/);
  });
});

describe("iot-agent CLI", () => {
  const io = () => {
    const out: string[] = [];
    const err: string[] = [];
    return { out, err, io: { out: (s: string) => out.push(s), err: (s: string) => err.push(s), env: {} } };
  };

  it("check-config names the key and line of every problem and exits 3", async () => {
    const d = makeTempDir();
    try {
      const file = join(d.path, "bad.yaml");
      writeFileSync(
        file,
        "device:\n  id: ok\nxmpp:\n  jid: a@b\n  password: x\n  server: nowhere\nboard:\n  outputs:\n    r: { source: gpio }\n",
      );
      const t = io();
      assert.equal(await cli(["check-config", file], t.io), 3);
      const msg = t.err.join("\n");
      assert.match(msg, /bad\.yaml:6: xmpp\.server: must be host:port/);
      assert.match(msg, /board\.outputs\.r\.line: is required for a gpio output/);
    } finally {
      d.remove();
    }
  });

  it("refuses a corrupt config file and unknown commands with distinct exit codes", async () => {
    const d = makeTempDir();
    try {
      const file = join(d.path, "corrupt.yaml");
      writeFileSync(file, Buffer.from([0x64, 0x3a, 0x20, 0x5b, 0xff, 0xfe, 0x0a, 0x00]));
      const t = io();
      assert.equal(await cli(["check-config", file], t.io), 3);
      assert.equal(await cli(["frobnicate"], io().io), 2);
      assert.equal(await cli(["run"], io().io), 2);
      assert.equal(await cli(["check-config", join(d.path, "missing.yaml")], io().io), 3);
    } finally {
      d.remove();
    }
  });

  it("prints help and version", async () => {
    const t = io();
    assert.equal(await cli(["--help"], t.io), 0);
    assert.match(t.out.join(""), /iot-agent <command>/);
    const v = io();
    assert.equal(await cli(["--version"], v.io), 0);
    assert.match(v.out.join(""), /^xmpp-iot-agent \d+\.\d+\.\d+/);
  });
});
