/**
 * One end-to-end suite, run against every server a fleet uses: Prosody 0.12 and ejabberd 23.01
 * from Debian, each started by the harness with its defaults as shipped here (test/harness). For
 * each server, the composed agent (createAgent, simulated board) runs twice: publishing through
 * the pubsub component and through PEP, both behind a link-breaking proxy. A slixmpp operator
 * checks what a fleet relies on: commands (list, every built-in, refusal of a stranger), readings
 * across link resets with no gap and no duplicate by sequence number, the status item, presence.
 * (The provisioning admin path runs against both servers in test/provisioning/fleet-*.test.ts.)
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "ltx";
import type { Agent } from "../../agent/main.js";
import { decodeReadings } from "../../agent/telemetry/codec.js";
import { ejabberdInstalled, startEjabberd } from "../harness/ejabberd.js";
import { OperatorClient } from "../harness/operator.js";
import { startProsody } from "../harness/prosody.js";
import { type LinkBreakingProxy, startProxy } from "../harness/proxy.js";
import { makeTempDir, type TempDir } from "../harness/tmp.js";
import { agentConfigHead, startComposedAgent } from "../harness/composed-agent.js";
import { sleep, waitFor } from "../xmpp/helpers.js";

interface Server {
  port: number;
  domain: string;
  pubsubJid: string;
  caFile: string | null;
  host: string;
  register(user: string, password: string): Promise<void>;
  stop(): Promise<void>;
}

const SERVERS: Array<{ name: string; start(devices: string[]): Promise<Server>; skip: string | false }> = [
  {
    name: "Prosody 0.12",
    start: (devices) => startProsody({ pubsubAdmins: devices }),
    skip: false,
  },
  {
    name: "ejabberd 23.01",
    start: (devices) => startEjabberd({ admins: devices }),
    skip: ejabberdInstalled() ? false : "ejabberd is not installed (scripts/setup installs it)",
  },
];

const PASS = "interop-device-pass";

function configText(server: Server, proxyPort: number, id: string, dir: string, pep: boolean): string {
  return `${agentConfigHead({
    id,
    dataDir: join(dir, id),
    domain: server.domain,
    port: proxyPort,
    caFile: server.caFile,
    pubsubService: pep ? null : server.pubsubJid,
    xmpp: ["keepalive: { idleMs: 2000, timeoutMs: 2000 }", "reconnect: { initialDelayMs: 50, maxDelayMs: 300 }"],
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
    temperature: { source: serial, link: mcu0, sensor: temperature, kind: temperature, unit: "°C", intervalMs: 100 }
    door-contact: { source: gpio, input: door, kind: contact }
telemetry:
  batch: { maxReadings: 5, maxAgeMs: 200 }
  publish: { maxItems: 10 }
`;
}

/** Every sequence number the operator saw in items of `node` from `from`: seq -> item ids carrying it. */
function seqsSeen(op: OperatorClient, from: string, node: string): Map<number, Set<string>> {
  const seen = new Map<number, Set<string>>();
  for (const ev of op.pubsubItems()) {
    if (ev.kind !== "item" || ev.node !== node || ev.from.split("/")[0] !== from || !ev.payload) continue;
    for (const r of decodeReadings(parse(ev.payload)).readings) {
      const ids = seen.get(r.seq) ?? new Set<string>();
      ids.add(ev.id ?? "");
      seen.set(r.seq, ids);
    }
  }
  return seen;
}

for (const server of SERVERS) {
  describe(`the agent on ${server.name}`, { skip: server.skip }, () => {
    let xmpp: Server;
    let dir: TempDir;
    let op: OperatorClient;
    let stranger: OperatorClient;
    const agents: Record<"component" | "pep", { agent: Agent; proxy: LinkBreakingProxy; jid: string; bare: string }> =
      {} as never;

    before(async () => {
      dir = makeTempDir("interop-");
      xmpp = await server.start([`dev-comp@iot.test`, `dev-pep@iot.test`]);
      await Promise.all([
        xmpp.register("dev-comp", PASS),
        xmpp.register("dev-pep", PASS),
        xmpp.register("operator", "op-pass"),
        xmpp.register("stranger", "st-pass"),
      ]);
      for (const [mode, id] of [
        ["component", "dev-comp"],
        ["pep", "dev-pep"],
      ] as const) {
        const proxy = await startProxy({ targetPort: xmpp.port });
        const { agent, jid } = await startComposedAgent({
          dir: dir.path,
          name: `${id}.yaml`,
          config: configText(xmpp, proxy.port, id, dir.path, mode === "pep"),
          password: PASS,
        });
        agents[mode] = { agent, proxy, jid, bare: jid.split("/")[0]! };
      }
      op = await OperatorClient.login(xmpp, "operator", "op-pass", { name: "interop-operator", maxEvents: 20_000 });
      stranger = await OperatorClient.login(xmpp, "stranger", "st-pass", { name: "interop-stranger" });
    });

    after(async () => {
      await op?.stop();
      await stranger?.stop();
      for (const a of Object.values(agents ?? {})) {
        await a.agent.stop();
        await a.proxy.stop();
      }
      await xmpp?.stop();
      dir?.remove();
    });

    it("presence: the device accepts an operator's subscription and is seen available", async () => {
      for (const a of Object.values(agents)) {
        await op.subscribePresence(a.bare);
        await waitFor(
          () => op.presences().some((p) => p.from === a.jid && (p.type ?? "available") === "available"),
          10_000,
          `${a.bare} available to the operator`,
        );
      }
    });

    it("commands: an operator lists and runs every built-in; a stranger sees none and is refused", async () => {
      const { jid, agent } = agents.component;
      const nodes = (await op.listCommands(jid)).map((c) => c.node).sort();
      assert.deepEqual(nodes, [
        "configure-channel",
        "list-channels",
        "read",
        "restart-drivers",
        "serial-command",
        "set-output",
        "set-sampling",
        "status",
      ]);
      const done = async (node: string, values?: Record<string, string | number | boolean>) => {
        const r = await op.execute(jid, node, values);
        assert.equal(r.status, "completed", `${node}: ${JSON.stringify(r.notes)}`);
        assert.equal(
          r.notes.some((n) => n.type === "error"),
          false,
          `${node}: ${JSON.stringify(r.notes)}`,
        );
        return r;
      };
      await done("status");
      await done("list-channels");
      await done("read", { channel: "temperature" });
      await done("set-output", { output: "relay", value: true });
      assert.equal(agent.sim!.gpio.level(17), 1);
      await done("set-output", { output: "relay", value: false });
      assert.equal(agent.sim!.gpio.level(17), 0);
      await done("set-sampling", { channel: "temperature", intervalMs: 200 });
      await done("serial-command", { request: "version" });
      await done("restart-drivers", { confirm: true });
      const first = await op.execute(jid, "configure-channel");
      assert.equal(first.status, "executing");
      const second = await op.next(jid, "configure-channel", first.sessionid!, { channel: "temperature" });
      const last = await op.complete(jid, "configure-channel", second.sessionid!, { intervalMs: 100, enabled: true });
      assert.equal(last.status, "completed");
      assert.deepEqual(await stranger.listCommands(jid), []);
      await assert.rejects(stranger.execute(jid, "set-output", { output: "relay", value: true }), /forbidden/);
      assert.equal(agent.sim!.gpio.level(17), 0);
    });

    for (const mode of ["component", "pep"] as const) {
      it(`telemetry through ${mode === "pep" ? "PEP" : "the pubsub component"}: readings across 3 link resets, no gap, no duplicate`, async () => {
        const a = agents[mode];
        const service = mode === "pep" ? a.bare : xmpp.pubsubJid;
        const node = `devices/${a.bare.split("@")[0]}/telemetry`;
        await op.subscribe(service, node);
        const from = mode === "pep" ? a.bare : xmpp.pubsubJid;
        await waitFor(() => seqsSeen(op, from, node).size >= 10, 20_000, "ten readings at the operator");
        for (let i = 0; i < 3; i++) {
          const before = seqsSeen(op, from, node).size;
          a.proxy.reset();
          await sleep(300);
          await waitFor(() => seqsSeen(op, from, node).size >= before + 5, 20_000, `readings after reset ${i + 1}`);
        }
        assert.ok(a.agent.session.stats().resumes + a.agent.session.stats().disconnects >= 3);
        const seen = seqsSeen(op, from, node);
        const seqs = [...seen.keys()].sort((x, y) => x - y);
        const first = seqs[0]!;
        const last = seqs.at(-1)!;
        const missing: number[] = [];
        for (let s = first; s <= last; s++) if (!seen.has(s)) missing.push(s);
        assert.deepEqual(missing, [], `gaps between seq ${first} and ${last}`);
        const inTwoItems = [...seen].filter(([, ids]) => ids.size > 1).map(([s]) => s);
        assert.deepEqual(inTwoItems, [], "a reading in two different items");
        assert.equal(a.agent.telemetry!.status()?.spool.droppedReadings, 0);
      });
    }

    it("the status item is published and fetchable, with versions and channels", async () => {
      for (const mode of ["component", "pep"] as const) {
        const a = agents[mode];
        const service = mode === "pep" ? a.bare : xmpp.pubsubJid;
        const { items } = await op.getItems(service, `devices/${a.bare.split("@")[0]}/status`);
        const current = items.find((i) => i.id === "current");
        const payload = current?.payload ?? "";
        assert.ok(payload, `${mode}: status item`);
        assert.match(payload, /0\.1\.0/);
        assert.match(payload, /temperature/);
      }
    });
  });
}
