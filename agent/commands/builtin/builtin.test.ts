import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import { type Element, parse } from "ltx";
import { FakeTimers } from "../../../kernel/timers.js";
import { StanzaError } from "../../../xmpp/stanza-error.js";
import { AdhocCommands, NS_COMMANDS } from "../adhoc.js";
import { MemoryAuditSink } from "../audit.js";
import { Authorizer } from "../authorize.js";
import { type DataForm, findForm, parseForm } from "../forms.js";
import {
  type ChannelInfo,
  type ChannelSettings,
  DeviceFailure,
  type DriversPort,
  type HardwarePort,
  type McuPort,
  type SamplingPort,
  type StatusSource,
} from "../ports.js";
import { CommandRegistry } from "../registry.js";
import { BUILTIN_NODES, registerBuiltins } from "./index.js";
import { describeInbound, describeMemory, formatDuration, statusForm } from "./status.js";

const OP = "alice@iot.test/slix";

class FakeHardware implements HardwarePort {
  levels = new Map<string, boolean>([
    ["relay", false],
    ["led", true],
  ]);
  async listChannels(): Promise<ChannelInfo[]> {
    return [
      { id: "temp", direction: "sensor", kind: "temperature", unit: "°C", intervalMs: 1000 },
      { id: "button", direction: "input", kind: "input" },
      { id: "relay", direction: "output", kind: "relay" },
      { id: "led", direction: "output", kind: "led" },
    ];
  }
  async read(id: string) {
    if (id === "temp") return { channelId: id, value: 21.5, unit: "°C", timestamp: 0, quality: "good" as const };
    return { channelId: id, value: this.levels.get(id) ?? false, timestamp: 0, quality: "good" as const };
  }
  async setOutput(id: string, value: boolean, opts: { pulseMs?: number } = {}) {
    const previous = this.levels.get(id);
    this.levels.set(id, value);
    return {
      outputId: id,
      previous,
      value,
      ...(opts.pulseMs !== undefined ? { pulseMs: opts.pulseMs, restoresTo: !value } : {}),
    };
  }
}

class FakeSampling implements SamplingPort {
  readonly minIntervalMs = 100;
  readonly maxIntervalMs = 86_400_000;
  settings = new Map<string, ChannelSettings>([
    ["temp", { intervalMs: 1000, enabled: true }],
    ["hum", { intervalMs: 5000, enabled: true }],
  ]);
  async channels() {
    return [...this.settings.keys()];
  }
  async get(id: string) {
    return { ...this.settings.get(id)! };
  }
  async update(id: string, patch: Partial<ChannelSettings>) {
    const before = await this.get(id);
    const after = { ...before, ...patch };
    this.settings.set(id, after);
    return { before, after };
  }
}

const mcu: McuPort = {
  requests: [
    { name: "version", description: "firmware version" },
    { name: "read", description: "a sensor", argument: "sensor" },
  ],
  async request(name, arg, timeoutMs) {
    if (name === "version") return "iot-sim-mcu 1.0.0";
    if (arg === "slow")
      throw new DeviceFailure("serial_timeout", `no answer within ${timeoutMs} ms`, { device: "serial:mcu0" });
    return `${arg}=21.5`;
  },
};

const status: StatusSource = {
  async snapshot() {
    return {
      uptimeS: 12.4,
      agentVersion: "0.1.0",
      firmwareVersion: "iot-sim-mcu 1.0.0",
      memory: {
        rssBytes: 40_000_000,
        heapUsedBytes: 9_000_000,
        heapTotalBytes: 12_000_000,
        externalBytes: 1_500_000,
        arrayBuffersBytes: 200_000,
        limitBytes: 96 * 1_048_576,
      },
      link: { state: "online", since: 0, server: "127.0.0.1:5222" },
      streamManagement: { enabled: true, resumes: 2, unacked: 0 },
      reconnects: 3,
      spool: { depth: 7, drops: 0 },
      pubsub: { service: "pubsub.iot.test", nodes: ["devices/dev1/state", "devices/dev1/telemetry"] },
    };
  },
};

let seq = 0;
function exec(node: string, values?: Record<string, string>, attrs = ""): Element {
  const form = values
    ? `<x xmlns="jabber:x:data" type="submit">${Object.entries(values)
        .map(([k, v]) => `<field var="${k}"><value>${v}</value></field>`)
        .join("")}</x>`
    : "";
  return parse(
    `<iq type="set" id="b${++seq}" from="${OP}" to="dev1@iot.test/agent"><command xmlns="${NS_COMMANDS}" node="${node}"${attrs}>${form}</command></iq>`,
  );
}
const notes = (el: Element) => el.getChildren("note").map((n) => n.text());
const resultOf = (el: Element): DataForm => parseForm(findForm(el)!);
const field = (f: DataForm, v: string) => f.fields.find((x) => x.var === v)?.values[0];

describe("built-in commands", () => {
  let hw: FakeHardware;
  let sampling: FakeSampling;
  let restarts: number;
  let adhoc: AdhocCommands;
  let audit: MemoryAuditSink;

  beforeEach(() => {
    hw = new FakeHardware();
    sampling = new FakeSampling();
    restarts = 0;
    const drivers: DriversPort = {
      async restart() {
        restarts++;
        return { restarted: ["serial:mcu0", "output:relay"] };
      },
    };
    audit = new MemoryAuditSink();
    adhoc = new AdhocCommands({
      registry: registerBuiltins(new CommandRegistry(), { status, hardware: hw, sampling, mcu, drivers }),
      authorizer: new Authorizer([{ jid: "alice@iot.test", commands: ["*"] }]),
      audit,
      timers: new FakeTimers(),
    });
  });

  it("registers every built-in, and only those whose ports exist", async () => {
    assert.deepEqual(adhoc.discoNodes().slice(1).sort(), [...BUILTIN_NODES].sort());
    const partial = registerBuiltins(new CommandRegistry(), { status });
    assert.deepEqual(
      partial.list().map((d) => d.node),
      ["status"],
    );
  });

  it("status shows versions, link, counters, spool and pubsub nodes in human units, and the raw snapshot hidden", async () => {
    const f = resultOf(await adhoc.handle(exec("status")));
    assert.equal(field(f, "agentVersion"), "0.1.0");
    assert.equal(field(f, "firmwareVersion"), "iot-sim-mcu 1.0.0");
    assert.equal(field(f, "uptime"), "12 s");
    assert.equal(field(f, "memory"), "38.1 MiB resident of 96 MiB limit (40%), 8.6 MiB heap used");
    assert.equal(field(f, "link"), "online since 1970-01-01T00:00:00.000Z (127.0.0.1:5222)");
    assert.equal(field(f, "streamManagement"), "on; 2 resumptions, 0 unacknowledged");
    assert.equal(field(f, "reconnects"), "3");
    assert.equal(field(f, "spool"), "7");
    assert.equal(field(f, "pubsub"), "devices/dev1/state, devices/dev1/telemetry on pubsub.iot.test");
    const json = f.fields.find((x) => x.var === "json")!;
    assert.equal(json.type, "hidden");
    const raw = JSON.parse(json.values[0]!);
    assert.deepEqual(raw.memory, {
      rssBytes: 40_000_000,
      heapUsedBytes: 9_000_000,
      heapTotalBytes: 12_000_000,
      externalBytes: 1_500_000,
      arrayBuffersBytes: 200_000,
      limitBytes: 100_663_296,
    });
    assert.equal(raw.uptimeS, 12.4);
  });

  it("formats durations for people", () => {
    assert.deepEqual([0, 59, 60, 245, 3599, 3720, 86_399, 273_600].map(formatDuration), [
      "0 s",
      "59 s",
      "1m 00s",
      "4m 05s",
      "59m 59s",
      "1h 02m",
      "23h 59m",
      "3d 04h",
    ]);
  });

  it("list-channels answers a table", async () => {
    const res = await adhoc.handle(exec("list-channels"));
    const f = resultOf(res);
    assert.deepEqual(
      f.reported!.map((r) => r.var),
      ["id", "direction", "kind", "unit", "intervalMs"],
    );
    assert.deepEqual(
      f.items!.map((row) => row[0]!.values[0]),
      ["temp", "button", "relay", "led"],
    );
    assert.deepEqual(notes(res), ["4 channels"]);
  });

  it("read offers the channels, then reads one", async () => {
    const form = resultOf(await adhoc.handle(exec("read")));
    assert.deepEqual(
      form.fields[0]!.options!.map((o) => o.value),
      ["temp", "button", "relay", "led"],
    );
    const f = resultOf(await adhoc.handle(exec("read", { channel: "temp" })));
    assert.equal(field(f, "value"), "21.5");
    assert.equal(field(f, "quality"), "good");
  });

  it("set-output offers outputs only, says what changed, and reports a pulse", async () => {
    const form = resultOf(await adhoc.handle(exec("set-output")));
    assert.deepEqual(
      form.fields[0]!.options!.map((o) => o.value),
      ["relay", "led"],
    );
    const res = await adhoc.handle(exec("set-output", { output: "relay", value: "1" }));
    assert.deepEqual(notes(res), ["Changed output relay: off -> on"]);
    assert.equal(hw.levels.get("relay"), true);
    const pulse = await adhoc.handle(exec("set-output", { output: "led", value: "false", pulseMs: "250" }));
    assert.deepEqual(notes(pulse), ["Changed output led: on -> off", "Pulse started: back to on after 250 ms"]);
  });

  it("set-output refuses bad values, naming the field, and changes nothing", async () => {
    await assert.rejects(
      adhoc.handle(exec("set-output", { output: "temp", value: "1" })),
      (e: unknown) => e instanceof StanzaError && /Field 'output'/.test(e.text ?? ""),
    );
    await assert.rejects(
      adhoc.handle(exec("set-output", { output: "relay", value: "yes" })),
      (e: unknown) => e instanceof StanzaError && /Field 'value'.*true or false/.test(e.text ?? ""),
    );
    await assert.rejects(
      adhoc.handle(exec("set-output", { output: "relay", value: "1", pulseMs: "-5" })),
      (e: unknown) => e instanceof StanzaError && /Field 'pulseMs'.*>= 1/.test(e.text ?? ""),
    );
    assert.equal(hw.levels.get("relay"), false);
  });

  it("set-sampling changes and persists the interval through the port, within the port's range", async () => {
    const res = await adhoc.handle(exec("set-sampling", { channel: "hum", intervalMs: "2000" }));
    assert.deepEqual(notes(res), ["Changed sampling interval of hum (ms): 5000 -> 2000"]);
    assert.equal(sampling.settings.get("hum")!.intervalMs, 2000);
    const again = await adhoc.handle(exec("set-sampling", { channel: "hum", intervalMs: "2000" }));
    assert.match(notes(again)[0]!, /Unchanged/);
    await assert.rejects(adhoc.handle(exec("set-sampling", { channel: "hum", intervalMs: "10" })), /must be >= 100/);
  });

  it("configure-channel: stage 2 shows the chosen channel's settings, complete applies them", async () => {
    const s1 = await adhoc.handle(exec("configure-channel"));
    const sid = s1.attrs.sessionid;
    const s2 = await adhoc.handle(exec("configure-channel", { channel: "temp" }, ` sessionid="${sid}" action="next"`));
    const f2 = resultOf(s2);
    assert.equal(field(f2, "intervalMs"), "1000");
    assert.equal(field(f2, "enabled"), "1");
    const done = await adhoc.handle(
      exec("configure-channel", { intervalMs: "3000", enabled: "0" }, ` sessionid="${sid}" action="complete"`),
    );
    assert.deepEqual(notes(done), [
      "Changed sampling interval of temp (ms): 1000 -> 3000",
      "Changed publishing of temp: true -> false",
    ]);
    assert.deepEqual(sampling.settings.get("temp"), { intervalMs: 3000, enabled: false });
  });

  it("serial-command sends a documented request, and reports a device timeout as a failed command", async () => {
    const f = resultOf(await adhoc.handle(exec("serial-command", { request: "version" })));
    assert.equal(field(f, "answer"), "iot-sim-mcu 1.0.0");
    const slow = await adhoc.handle(exec("serial-command", { request: "read", argument: "slow", timeoutMs: "100" }));
    assert.equal(slow.attrs.status, "completed");
    assert.equal(slow.getChild("note")!.attrs.type, "error");
    assert.match(notes(slow)[0]!, /serial_timeout: no answer within 100 ms/);
    assert.equal(audit.records.at(-1)!.outcome, "failed");
    const missing = await adhoc.handle(exec("serial-command", { request: "read" }));
    assert.match(notes(missing)[0]!, /^mcu_bad_argument: read needs an argument/);
    await assert.rejects(adhoc.handle(exec("serial-command", { request: "reboot" })), /must be one of version, read/);
    await assert.rejects(
      adhoc.handle(exec("serial-command", { request: "read", argument: "x;rm -rf" })),
      /Field 'argument'.*must match/,
    );
  });

  it("restart-drivers needs confirmation", async () => {
    const no = await adhoc.handle(exec("restart-drivers", { confirm: "0" }));
    assert.deepEqual(notes(no), ["Not confirmed: nothing restarted"]);
    assert.equal(restarts, 0);
    const yes = await adhoc.handle(exec("restart-drivers", { confirm: "1" }));
    assert.deepEqual(notes(yes), ["Restarted 2 drivers: serial:mcu0, output:relay"]);
    assert.equal(restarts, 1);
  });
});

describe("status: inbound refusals in words", () => {
  it("says none when nothing was refused, and names the worst sender otherwise", () => {
    const zero = { skipped: 0, droppedFromStrangers: 0, droppedFromOperators: 0, strangerRepliesDropped: 0 };
    assert.equal(describeInbound(zero), "none");
    assert.equal(
      describeInbound({
        ...zero,
        skipped: 14,
        droppedFromStrangers: 1985,
        strangerRepliesDropped: 1,
        topDropped: { sender: "eve@iot.test", dropped: 1985 },
      }),
      "14 over limits (skipped); 1985 over budget from strangers; 1 reply to strangers not sent (most: eve@iot.test, 1985)",
    );
  });
});

describe("status: memory in words", () => {
  const mem = {
    rssBytes: 65_116_570,
    heapUsedBytes: 9_751_756,
    heapTotalBytes: 14_000_000,
    externalBytes: 2_000_000,
    arrayBuffersBytes: 300_000,
  };

  it("gives resident and heap in MiB, against the limit with its share when there is one", () => {
    assert.equal(
      describeMemory({ ...mem, limitBytes: 100_663_296 }),
      "62.1 MiB resident of 96 MiB limit (65%), 9.3 MiB heap used",
    );
    // A limit that is not whole MiB (memory.limitBytes: 100000000) keeps its decimal.
    assert.equal(
      describeMemory({ ...mem, limitBytes: 100_000_000 }),
      "62.1 MiB resident of 95.4 MiB limit (65%), 9.3 MiB heap used",
    );
  });

  it("says there is no limit when none was found", () => {
    assert.equal(describeMemory(mem), "62.1 MiB resident (no limit), 9.3 MiB heap used");
  });

  it("keeps the live heap (taken under --expose-gc) in the json only", async () => {
    const withLive = { ...mem, heapLiveBytes: 6_000_000 };
    const f = statusForm({
      uptimeS: 1,
      agentVersion: "0.1.0",
      memory: withLive,
      link: { state: "online" },
      reconnects: 0,
    });
    assert.equal(field(f, "memory"), "62.1 MiB resident (no limit), 9.3 MiB heap used");
    const raw = JSON.parse(f.fields.find((x) => x.var === "json")!.values[0]!);
    assert.deepEqual(raw.memory, withLive);
  });
});
