/**
 * A hostile account on the same Prosody floods the composed agent (test/harness/flooder.ts, in its
 * own process) while a slixmpp operator runs commands and telemetry publishes. What must hold:
 * every operator command is answered, no reading is lost, the link never drops. The operator's
 * command latency is measured before the flood and during it, in the same run, and printed.
 *
 * And the audit trail: 10,000 refused requests with the largest node names the device accepts, from
 * one account whose budget is opened wide so that every one reaches the command layer, leave every
 * operator record in place.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "ltx";
import type { Agent } from "../../agent/main.js";
import { decodeReadings } from "../../agent/telemetry/codec.js";
import { agentConfigHead, startComposedAgent, simTemperatureBoard } from "../harness/composed-agent.js";
import { type FloodOptions, runFlood } from "../harness/flooder.js";
import { OperatorClient } from "../harness/operator.js";
import { type ProsodyHandle, startProsody } from "../harness/prosody.js";
import { makeTempDir, type TempDir } from "../harness/tmp.js";
import { waitFor, waitForProgress } from "../xmpp/helpers.js";

const DEVICE_PASS = "device-pass-h";
const ID = "hostile-01";
const NODE = `devices/${ID}/telemetry`;

function configText(p: ProsodyHandle, dir: string, xmpp: string[] = [], extra = ""): string {
  return `${agentConfigHead({
    id: ID,
    dataDir: join(dir, "state"),
    port: p.port,
    caFile: p.caFile,
    xmpp,
  })}${simTemperatureBoard()}telemetry:
  batch: { maxReadings: 5, maxAgeMs: 250 }
  publish: { maxItems: max }
${extra}`;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

/**
 * Runs commands one after another, 50 ms apart (an operator's script polling the device), until
 * `until()`, returning each one's latency in ms.
 */
async function commandLoop(op: OperatorClient, jid: string, until: () => boolean): Promise<number[]> {
  const latencies: number[] = [];
  for (let i = 0; !until(); i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 50));
    const t0 = performance.now();
    const res =
      i % 2 === 0 ? await op.execute(jid, "status") : await op.execute(jid, "read", { channel: "temperature" });
    latencies.push(performance.now() - t0);
    assert.equal(res.status, "completed", `command ${i} answered ${res.status}`);
  }
  return latencies;
}

function seqsSeen(op: OperatorClient): number[] {
  const seqs: number[] = [];
  for (const ev of op.pubsubItems()) {
    if (ev.node !== NODE || !ev.payload) continue;
    for (const r of decodeReadings(parse(ev.payload)).readings) seqs.push(r.seq);
  }
  return [...new Set(seqs)].sort((a, b) => a - b);
}

/** A flood from the intruder's account on the harness Prosody. */
function floodFromIntruder(
  p: ProsodyHandle,
  o: Omit<FloodOptions, "host" | "port" | "domain" | "caFile" | "user" | "password">,
) {
  return runFlood({
    host: "127.0.0.1",
    port: p.port,
    domain: "iot.test",
    caFile: p.caFile!,
    user: "intruder",
    password: "in-pass",
    ...o,
  });
}

/** Prosody's debug log lines that carry one of `ids` (stanza id attribute), shortened. */
function serverTrace(logFile: string, ids: string[]): string[] {
  const wanted = ids.map((id) => `id='${id}'`);
  return readFileSync(logFile, "utf8")
    .split("\n")
    .filter((l) => wanted.some((w) => l.includes(w)))
    .map((l) => l.slice(0, 200))
    .slice(0, 40);
}

/** Distinct `<prefix><n>` ids of the IQs Prosody wrote to the device's session (its debug log's "Sending" lines). */
function routedToDevice(logFile: string, prefix: string, deviceJid: string): number {
  const ids = new Set<string>();
  const id = new RegExp(`id='(${prefix}\\d+)'`);
  for (const line of readFileSync(logFile, "utf8").split("\n")) {
    if (!line.includes("Sending[c2s]: <iq") || !line.includes(`to='${deviceJid}'`)) continue;
    const m = id.exec(line);
    if (m) ids.add(m[1]!);
  }
  return ids.size;
}

describe("hostile load against the composed agent on Prosody", () => {
  let prosody: ProsodyHandle;
  let dir: TempDir;
  let agent: Agent;
  let op: OperatorClient;
  let deviceJid: string;

  before(async () => {
    prosody = await startProsody({ pubsubAdmins: [`${ID}@iot.test`] });
    await prosody.register(ID, DEVICE_PASS);
    await prosody.register("operator", "op-pass");
    await prosody.register("intruder", "in-pass");
    dir = makeTempDir();
    ({ agent, jid: deviceJid } = await startComposedAgent({
      dir: dir.path,
      config: configText(prosody, dir.path),
      password: DEVICE_PASS,
    }));
    op = await OperatorClient.login(prosody, "operator", "op-pass", { name: "hostile-operator" });
  });

  after(async () => {
    await op?.stop();
    await agent?.stop();
    await prosody?.stop();
    dir?.remove();
  });

  it("one account at 5,000 stanzas/s for 10 s: every operator command answered, no reading lost, no disconnect", async () => {
    await waitFor(() => (agent.telemetry?.status()?.publisher.publishedItems ?? 0) > 0, 10_000, "a first publish");
    await op.subscribe("pubsub.iot.test", NODE);
    const baselineEnd = Date.now() + 4000;
    const baseline = await commandLoop(op, deviceJid, () => Date.now() > baselineEnd);
    const disconnectsBefore = agent.session.stats().disconnects;

    let flooding = true;
    const flood = floodFromIntruder(prosody, {
      to: deviceJid,
      rate: 5000,
      seconds: 10,
      kinds: ["disco", "execute", "message", "version", "disco"],
      // Close only once Prosody has routed the whole flood (see FloodOptions.barrierMs).
      barrierMs: 120_000,
    }).finally(() => {
      flooding = false;
    });
    // Give the flooder its login time, so the commands below run inside the flood.
    await waitFor(() => agent.session.stats().inbound.droppedFromStrangers > 0, 15_000, "the flood to arrive");
    const during = await commandLoop(op, deviceJid, () => !flooding);
    const report = await flood;

    // Prosody routed the whole flood (the flooder's closing ping) but may still be writing its tail
    // to the agent: wait until the agent has seen it all (a stranger's budget admits ~70 of it in
    // 10 s), as long as the count keeps moving (how long depends on the machine's load).
    await waitForProgress(
      () => agent.session.stats().inbound.droppedFromStrangers,
      report.sent - 500,
      { stallMs: 15_000, maxMs: 180_000 },
      "the whole flood to reach the agent",
    );
    const published = () => agent.telemetry!.status()!;
    await waitFor(() => published().spool.readings === 0, 15_000, "the spool to drain after the flood");
    const lastPublished = published().publisher.publishedReadings;
    await waitFor(() => seqsSeen(op).length >= lastPublished, 15_000, "the subscriber to see every reading");
    const seqs = seqsSeen(op);
    const gaps = seqs.filter((s, i) => i > 0 && s !== seqs[i - 1]! + 1);
    const st = agent.session.stats();
    const figures = {
      floodSent: report.sent,
      floodRoutedAfterMs: report.barrierAnsweredMs,
      floodRate: report.achievedRate,
      floodAnswers: report.answers,
      droppedFromStrangers: st.inbound.droppedFromStrangers,
      strangerRepliesDropped: st.strangerRepliesDropped,
      commandsBaseline: baseline.length,
      commandsDuringFlood: during.length,
      p50BaselineMs: Math.round(percentile(baseline, 50)),
      p99BaselineMs: Math.round(percentile(baseline, 99)),
      p50FloodMs: Math.round(percentile(during, 50)),
      p99FloodMs: Math.round(percentile(during, 99)),
      p99Ratio: Number((percentile(during, 99) / percentile(baseline, 99)).toFixed(2)),
      readingsPublished: lastPublished,
      readingsSeenBySubscriber: seqs.length,
      gaps: gaps.length,
      spoolDropped: published().spool.droppedReadings,
      disconnects: st.disconnects - disconnectsBefore,
    };
    console.log(`# hostile flood figures: ${JSON.stringify(figures)}`);
    assert.ok(report.sent >= 40_000, `the flood reached the server (${report.sent} stanzas sent)`);
    assert.ok(during.length >= 5, `the operator ran commands during the flood (${during.length})`);
    assert.equal(figures.disconnects, 0, "the link never dropped");
    assert.equal(figures.gaps, 0, `no reading lost: ${seqs.length} seen`);
    assert.equal(figures.spoolDropped, 0);
    assert.ok(st.inbound.droppedFromStrangers >= report.sent - 500, "the flood was dropped at the door");
    assert.equal(st.inbound.droppedFromOperators, 0);
    // status tells an operator what happened, in words.
    const status = await op.execute(deviceJid, "status");
    const inbound = status.form?.fields.find((f) => f.var === "inbound")?.values.join(" ") ?? "";
    assert.match(inbound, /over budget from strangers \(most: intruder@iot\.test, \d+\)/);
  });

  it("10,000 refused requests with the largest node names the device accepts leave every operator record", async () => {
    // A second agent run, with the intruder's budget opened wide: the audit trail must hold on
    // its own, not only because the budget turned the flood away.
    await agent.stop();
    const maxStanza = 8192;
    const N = 10_000;
    ({ agent, jid: deviceJid } = await startComposedAgent({
      dir: dir.path,
      config: configText(
        prosody,
        dir.path,
        [
          `limits: { maxStanzaBytes: ${maxStanza} }`,
          "inbound: { stranger: { perSecond: 1000000, burst: 1000000 }, strangersTotal: { perSecond: 1000000, burst: 1000000 } }",
          // Every reply stays queued until the server acknowledges it, and Prosody's <a/> comes only
          // after the requests it has already written to the device: on a device slower than its
          // server the whole flood can be in that backlog, and the queue is fullest at the last
          // request. With room for a reply to each request none is refused. With 1000 places, the
          // slower machines lost the last request's answer (f9999), refused by the full queue and,
          // until xmpp/session.ts counted send_queue_full, in no counter.
          `streamManagement: { maxQueue: ${N + 1000}, maxStrangerReplies: ${N} }`,
        ],
        "commands:\n  audit:\n    maxBytes: 65536\n    refusals: { maxBytes: 65536, maxFiles: 2 }\n",
      ),
      password: DEVICE_PASS,
      name: "agent-audit.yaml",
    }));
    const operatorRecords = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const res = await op.execute(deviceJid, "read", { channel: "temperature" });
        assert.equal(res.status, "completed");
      }
    };
    const since = new Date().toISOString();
    await operatorRecords(10);
    // The largest node name that still fits the device's stanza limit with the rest of the IQ.
    const node = "x".repeat(maxStanza - 400);
    const report = await floodFromIntruder(prosody, {
      to: deviceJid,
      rate: 2000,
      seconds: 120,
      count: N,
      kinds: ["execute"],
      node,
      // Apart from the first flood's f-ids in Prosody's log.
      idPrefix: "a",
      drainMs: 60_000,
      drainUntilAnswers: N,
      // On the fresh-machine CI (never here) the last request, a9999, sometimes never reached the
      // device while the operator's later requests did. Prosody's log then has no "Received" for
      // it: Prosody never read it from the intruder's connection, and a whitespace nudge on that
      // connection did not bring it either. That is the server's delivery, not the device's: the
      // device's share (every request it got refused, answered and kept out of the audit trail) is
      // asserted exactly below, against what the server says it routed.
      nudgeMs: 10_000,
    });
    await operatorRecords(10);
    const st = agent.session.stats();
    const stateDir = join(dir.path, "state");
    const lines = (prefix: string) =>
      readdirSync(stateDir)
        .filter((f) => f.startsWith(prefix))
        .flatMap((f) => readFileSync(join(stateDir, f), "utf8").trim().split("\n").filter(Boolean));
    const audit = () =>
      lines("audit.jsonl").map((l) => JSON.parse(l) as { t: string; requester: string; node: string });
    const operatorKept = () =>
      audit().filter((r) => r.requester.startsWith("operator@") && r.node === "read" && r.t >= since).length;
    // The audit writer is asynchronous: the last records may still be on their way to the file.
    await waitFor(() => operatorKept() >= 20, 5000, "the operator's last records in audit.jsonl").catch(
      () => undefined,
    );
    const main = audit();
    const kept = operatorKept();
    const refusedBytes = readdirSync(stateDir)
      .filter((f) => f.startsWith("audit-refused"))
      .reduce((sum, f) => sum + readFileSync(join(stateDir, f)).length, 0);
    const forbidden = report.answers["error:forbidden"] ?? 0;
    // Where each late or missing request was seen: received from the intruder, sent to the device,
    // answered by it (Prosody logs every stanza at debug level in the harness).
    const stuck = [...new Set([...report.unansweredBeforeNudge, ...report.unanswered])];
    const trace = stuck.length > 0 ? serverTrace(prosody.logFile, stuck) : [];
    // What the server routed to the device: all N unless the server held some back (read from its
    // log only then: it is large).
    const refused = agent.commands.stats.forbidden;
    const routed = refused === N ? N : routedToDevice(prosody.logFile, "a", deviceJid);
    console.log(
      `# audit under 10,000 refusals: ${JSON.stringify({ sent: report.sent, rate: report.achievedRate, answers: report.answers, unanswered: report.unanswered, unansweredBeforeNudge: report.unansweredBeforeNudge, answeredAfterNudge: report.answeredAfterNudge, unwrittenBytesAtDrainEnd: report.unwrittenBytesAtDrainEnd, operatorRecordsKept: kept, operatorRecordsTotal: 20, skipped: st.stanzasSkipped, dropped: st.inbound.droppedFromStrangers, strangerRepliesDropped: st.strangerRepliesDropped, refusedFileBytes: refusedBytes })}`,
    );
    for (const line of trace) console.log(`#   prosody: ${line}`);
    const diagnosis = `agent stanzasIn ${st.stanzasIn}, disconnects ${st.disconnects}; server trace:\n${trace.join("\n") || "(none)"}`;
    if (routed < N) console.log(`#   the server routed ${routed} of ${N} requests to the device (see its trace above)`);
    assert.equal(report.sent, N);
    assert.ok(routed >= N * 0.99, `the server routed ${routed} of ${N} requests to the device (${diagnosis})`);
    assert.equal(refused, routed, `every request routed to the device was refused by its command layer (${diagnosis})`);
    assert.equal(st.strangerRepliesDropped, 0, "no reply refused for want of room in the queue");
    assert.equal(forbidden, refused, `every refused request answered forbidden (${diagnosis})`);
    assert.equal(kept, 20, "every operator record of this run is in audit.jsonl");
    assert.equal(main.filter((r) => r.requester.startsWith("intruder@")).length, 0, "no refusal in audit.jsonl");
    assert.ok(refusedBytes <= 3 * 65536, `refusals stay in their budget (${refusedBytes} bytes)`);
  });
});
