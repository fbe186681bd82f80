/**
 * Telemetry end to end: a real Prosody, the agent's XmppSession, TelemetryService with a file spool
 * and a scripted ChannelSource, and a slixmpp subscriber reading the items.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { parse } from "ltx";
import { Ctx, INVALID } from "../../kernel/schema-dsl.js";
import type { AgentError } from "../../kernel/errors.js";
import { decodeReadings, decodeStatus } from "../../agent/telemetry/codec.js";
import { type TelemetryConfig, telemetryConfigSchema } from "../../agent/telemetry/config.js";
import type { Reading } from "../../agent/telemetry/reading.js";
import type { ChannelSource } from "../../agent/telemetry/sampler.js";
import { TelemetryService } from "../../agent/telemetry/service.js";
import type { SessionPort } from "../../agent/telemetry/session-port.js";
import type { XmppSession } from "../../xmpp/session.js";
import { OperatorClient, type PubsubEvent } from "../harness/operator.js";
import { type ProsodyHandle, startProsody } from "../harness/prosody.js";
import { makeTempDir, type TempDir } from "../harness/tmp.js";
import { newSession, testXmppConfig, waitFor, waitOnline } from "../xmpp/helpers.js";

const PASS = "pw-123456";
// The real session must satisfy telemetry's port (compile-time check).
const _fits = (s: XmppSession): SessionPort => s;
void _fits;

function telemetryConfig(over: Record<string, unknown> = {}): TelemetryConfig {
  const ctx = new Ctx();
  const c = telemetryConfigSchema.parse(
    {
      batch: { maxReadings: 5, maxAgeMs: 100 },
      sampler: { minIntervalMs: 10 },
      spool: { maxBytes: 1024 * 1024, segmentBytes: 64 * 1024, maxRecordBytes: 64 * 1024 },
      publish: { retry: { initialDelayMs: 100, maxDelayMs: 500 } },
      ...over,
    },
    ctx,
  );
  if (c === INVALID) throw new Error(JSON.stringify(ctx.issues));
  return c;
}

function scriptedSource(): ChannelSource {
  let n = 0;
  return {
    channels: () => [
      { id: "temp0", kind: "temperature", unit: "°C", intervalMs: 40 },
      { id: "hum0", kind: "humidity", unit: "%", intervalMs: 60 },
    ],
    read: async (id) => ({ value: id === "temp0" ? 20 + (n++ % 10) / 10 : 55, quality: "good" }),
  };
}

function readingsOf(events: PubsubEvent[], node: string): Reading[] {
  return events
    .filter((e) => e.kind === "item" && e.node === node && e.payload)
    .flatMap((e) => decodeReadings(parse(e.payload!)).readings);
}

describe("telemetry to pubsub through Prosody", () => {
  let prosody: ProsodyHandle;
  let dir: TempDir;
  let operator: OperatorClient;
  const cleanups: Array<() => Promise<unknown>> = [];

  before(async () => {
    dir = makeTempDir("telemetry-");
    prosody = await startProsody({ pubsubAdmins: ["dev1@iot.test"] });
    await Promise.all(["dev1", "dev2", "dev3", "alice"].map((a) => prosody.register(a, PASS)));
    operator = await OperatorClient.login(prosody, "alice", PASS);
  });

  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await operator?.stop();
    await prosody?.stop();
    dir?.remove();
  });

  async function device(account: string, service: string | undefined, config = telemetryConfig()) {
    const session = newSession(testXmppConfig(prosody, `${account}@iot.test`, PASS), PASS);
    const online = waitOnline(session);
    session.start();
    await online;
    const telemetry = new TelemetryService({
      config,
      pubsub: { service, nodePrefix: "devices/" },
      // alice reads as an operator: the nodes are private (whitelist, the default).
      operators: ["alice@iot.test"],
      deviceId: account,
      dataDir: `${dir.path}/${account}`,
      session,
      source: scriptedSource(),
      agentVersion: "0.1.0-test",
      firmwareVersion: () => "sim-1.0",
    });
    const failures: AgentError[] = [];
    cleanups.push(async () => {
      await telemetry.stop();
      await session.stop();
    });
    await telemetry.start();
    telemetry.publisher!.on("failure", (e) => failures.push(e));
    return { session, telemetry, failures };
  }

  it("a subscriber receives readings with units and increasing sequence numbers (pubsub component)", async () => {
    const { telemetry } = await device("dev1", prosody.pubsubJid);
    await waitFor(() => (telemetry.status()?.publisher.publishedItems ?? 0) > 0, 10_000, "first item");
    await operator.subscribe(prosody.pubsubJid, telemetry.nodes.telemetry);
    const seen = () => readingsOf(operator.pubsubItems(), telemetry.nodes.telemetry);
    await waitFor(() => seen().length >= 40, 15_000, "40 readings at the subscriber");
    const got = seen();
    for (let i = 1; i < got.length; i++)
      assert.ok(got[i]!.seq > got[i - 1]!.seq, `seq ${got[i]!.seq} after ${got[i - 1]!.seq}`);
    assert.ok(got.every((r) => (r.channelId === "temp0" ? r.unit === "°C" : r.unit === "%")));
    assert.ok(got.every((r) => r.quality === "good" && r.historical !== true));
    const ids = operator
      .pubsubItems()
      .filter((e) => e.node === telemetry.nodes.telemetry)
      .map((e) => e.id!);
    assert.ok(ids.every((id) => /^r-\d+-\d+$/.test(id)));
    // History: the node keeps items, so a late reader can fetch them.
    const { items } = await operator.getItems(prosody.pubsubJid, telemetry.nodes.telemetry, 5);
    assert.ok(items.length > 0);
    // The status item tells what the device is.
    const status = await operator.getItems(prosody.pubsubJid, telemetry.nodes.status);
    assert.equal(status.items[0]?.id, "current");
    const st = decodeStatus(parse(status.items[0]!.payload!));
    assert.deepEqual(
      st.channels.map((c) => [c.id, c.unit]),
      [
        ["temp0", "°C"],
        ["hum0", "%"],
      ],
    );
    assert.equal(st.firmwareVersion, "sim-1.0");
  });

  it("server refuses node creation: a clear typed error, readings stay in the spool", async () => {
    const { telemetry, failures } = await device("dev2", prosody.pubsubJid);
    await waitFor(() => failures.length > 0, 10_000, "a failure");
    const err = failures.find((f) => f.code === "pubsub_forbidden");
    assert.ok(err, `failures: ${failures.map((f) => f.code)}`);
    assert.equal(err.context.node, "devices/dev2/telemetry");
    assert.equal(err.context.service, prosody.pubsubJid);
    assert.match(err.message, /refused to create node devices\/dev2\/telemetry/);
    await waitFor(() => (telemetry.status()?.spool.readings ?? 0) >= 10, 5000, "readings piling up in the spool");
    const s = telemetry.status()!;
    assert.equal(s.publisher.publishedItems, 0);
    assert.equal(s.spool.droppedReadings, 0);
  });

  it("PEP on the device's own JID works without admin rights", async () => {
    const { telemetry, session } = await device("dev3", undefined);
    await waitFor(() => (telemetry.status()?.publisher.publishedItems ?? 0) > 0, 10_000, "first PEP item");
    const bare = session.jid!.split("/")[0]!;
    await operator.subscribe(bare, telemetry.nodes.telemetry);
    await waitFor(
      () => readingsOf(operator.pubsubItems(), telemetry.nodes.telemetry).length >= 10,
      10_000,
      "PEP readings",
    );
  });
});
