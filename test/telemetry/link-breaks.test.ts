/**
 * Issue 5's link test: 5,000 readings published through a link-breaking proxy that resets the
 * connection 15 times and blackholes it 5 times. The subscriber's items must cover every sequence
 * number exactly once: no reading lost, none in two different items. A second notification for
 * the same item id is a re-send that overwrote the item, which is allowed and counted.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { parse } from "ltx";
import { Batcher } from "../../agent/telemetry/batcher.js";
import { decodeReadings } from "../../agent/telemetry/codec.js";
import { FileSpoolStore } from "../../agent/telemetry/file-spool.js";
import { TelemetryPublisher } from "../../agent/telemetry/publisher.js";
import type { Reading } from "../../agent/telemetry/reading.js";
import { SequenceCounter } from "../../agent/telemetry/sequence.js";
import { OperatorClient } from "../harness/operator.js";
import { type ProsodyHandle, startProsody } from "../harness/prosody.js";
import { type LinkBreakingProxy, startProxy } from "../harness/proxy.js";
import { makeTempDir, type TempDir } from "../harness/tmp.js";
import { newSession, sleep, testXmppConfig, waitFor, waitOnline } from "../xmpp/helpers.js";

const PASS = "pw-123456";
const TOTAL = Number(process.env.LINK_TOTAL ?? 5000);
const BREAKS = Number(process.env.LINK_BREAKS ?? 20);
const NODE = "devices/linky/telemetry";

describe("telemetry across broken links", () => {
  let prosody: ProsodyHandle;
  let proxy: LinkBreakingProxy;
  let operator: OperatorClient;
  let dir: TempDir;

  before(async () => {
    dir = makeTempDir("telemetry-links-");
    prosody = await startProsody({ pubsubAdmins: ["linky@iot.test"] });
    await prosody.register("linky", PASS);
    await prosody.register("watcher", PASS);
    operator = await OperatorClient.login(prosody, "watcher", PASS, { maxEvents: 50_000 });
    proxy = await startProxy({ targetPort: prosody.port });
  });

  after(async () => {
    await proxy?.stop();
    await operator?.stop();
    await prosody?.stop();
    dir?.remove();
  });

  it(`${TOTAL} readings, 20 link breaks: every seq arrives in exactly one item`, async () => {
    const session = newSession(testXmppConfig({ ...prosody, port: proxy.port }, "linky@iot.test", PASS), PASS);
    const online = waitOnline(session);
    session.start();
    await online;
    // Diagnostics: every request the publisher makes, until it settles.
    const open = new Map<string, number>();
    const realRequest = session.request.bind(session);
    session.request = (iq, opts) => {
      const p = realRequest(iq, opts);
      const id = String(iq.attrs.id);
      open.set(id, Date.now());
      p.then(
        () => open.delete(id),
        () => open.delete(id),
      );
      return p;
    };
    const spool = await FileSpoolStore.open({ dir: `${dir.path}/spool`, fsync: "interval", fsyncIntervalMs: 200 });
    const seq = new SequenceCounter({ path: `${dir.path}/sequence.json` });
    seq.open();
    const publisher = new TelemetryPublisher({
      session,
      spool,
      deviceId: "linky",
      service: prosody.pubsubJid,
      nodes: { telemetry: NODE, status: "devices/linky/status" },
      // Prosody's internal storage rewrites a full node's item list on every publish, so a node
      // keeping hundreds of items publishes at a few items/s on this machine; history is not what
      // this test is about (docs/spool.md, "Publishing").
      nodeConfig: { maxItems: Number(process.env.LINK_MAX_ITEMS ?? 10) },
      // The node is private (whitelist, the default): the watcher reads as a member.
      readers: ["watcher@iot.test"],
      requestTimeoutMs: 3000,
      retry: { initialDelayMs: 100, maxDelayMs: 1000, factor: 2 },
    });
    const batcher = new Batcher({
      sink: async (rs) => {
        await spool.append(rs);
        publisher.notify();
      },
      maxReadings: 10,
      maxAgeMs: 50,
    });
    const failures: string[] = [];
    publisher.on("failure", (e) => failures.push(e.code));
    publisher.start();
    try {
      await waitFor(() => publisher.stats().state !== "offline", 5000, "publisher ready");
      // The node exists once the first publish went through; subscribe before the real run.
      batcher.add({ seq: seq.next(), channelId: "warm", value: 0, timestamp: Date.now(), quality: "good" });
      await waitFor(() => publisher.stats().publishedItems >= 1, 10_000, "first item");
      await operator.subscribe(prosody.pubsubJid, NODE);
      const firstSeq = seq.next();
      const produce = (async () => {
        for (let i = 0; i < TOTAL; i++) {
          const r: Reading = {
            seq: i === 0 ? firstSeq : seq.next(),
            channelId: i % 2 ? "temp0" : "hum0",
            value: i,
            unit: i % 2 ? "°C" : "%",
            timestamp: Date.now(),
            quality: "good",
          };
          batcher.add(r);
          if (i % 10 === 9) await sleep(4);
        }
        await batcher.flush();
      })();
      let breaks = 0;
      for (let b = 0; b < BREAKS; b++) {
        await sleep(250);
        const back = waitOnline(session, 20_000);
        if (b % 4 === 3) {
          proxy.blackhole(true);
          await sleep(2500);
          proxy.blackhole(false);
        } else proxy.reset();
        breaks++;
        await back;
      }
      await produce;
      const timeline = setInterval(() => {
        if (process.env.LINK_TRACE)
          console.log(
            `# t published=${publisher.stats().publishedItems} spool=${spool.stats().batches} state=${session.state} failures=${failures.length} unsettled=${open.size}`,
          );
      }, 1000);
      after(() => clearInterval(timeline));
      await waitFor(
        () => spool.stats().batches === 0 && publisher.stats().inFlight === 0,
        60_000,
        "spool drained",
      ).catch(async (err) => {
        const probe = await Promise.race([
          spool.peek(1).then(() => "spool responsive"),
          sleep(1000).then(() => "SPOOL STUCK"),
        ]);
        const ages = [...open].map(([id, t]) => `${id}:${Date.now() - t}ms`).join(" ");
        throw new Error(
          `${probe} unsettled IQs [${ages}] ` +
            `${err.message}: spool ${JSON.stringify(spool.stats())} publisher ${JSON.stringify(publisher.stats())} internals ${JSON.stringify({ pumping: (publisher as unknown as { pumping: boolean }).pumping, retryQ: (publisher as unknown as { retryQueue: unknown[] }).retryQueue.length, inflight: [...(publisher as unknown as { inflight: Map<number, unknown> }).inflight.keys()], timer: Boolean((publisher as unknown as { retryTimer: unknown }).retryTimer) })} session ${session.state} ${JSON.stringify(session.stats())}`,
        );
      });
      const lastSeq = firstSeq + TOTAL - 1;
      const seen = () =>
        new Set(
          operator
            .pubsubItems()
            .filter((e) => e.node === NODE && e.kind === "item")
            .map((e) => e.id),
        );
      await waitFor(() => [...seen()].some((id) => id?.endsWith(`-${lastSeq}`)), 20_000, "last item at the subscriber");
      await sleep(300);

      const byId = new Map<string, number[]>();
      let notifications = 0;
      for (const e of operator.pubsubItems()) {
        if (e.node !== NODE || e.kind !== "item" || !e.payload) continue;
        notifications++;
        const seqs = decodeReadings(parse(e.payload)).readings.map((r) => r.seq);
        const prev = byId.get(e.id!);
        if (prev) assert.deepEqual(prev, seqs, `item ${e.id} re-sent with different content`);
        byId.set(e.id!, seqs);
      }
      const count = new Map<number, number>();
      for (const seqs of byId.values()) for (const s of seqs) count.set(s, (count.get(s) ?? 0) + 1);
      const missing: number[] = [];
      const twice: number[] = [];
      for (let s = firstSeq; s <= lastSeq; s++) {
        const c = count.get(s) ?? 0;
        if (c === 0) missing.push(s);
        if (c > 1) twice.push(s);
      }
      assert.equal(breaks, BREAKS);
      assert.deepEqual(missing, [], `${missing.length} seqs never arrived`);
      assert.deepEqual(twice, [], `${twice.length} seqs in two different items`);
      const st = session.stats();
      console.log(
        `# link-breaks: items=${byId.size} notifications=${notifications} (re-sends ${notifications - byId.size}) ` +
          `publishFailures=${failures.length} [${[...new Set(failures)].join(",")}] resumes=${st.resumes} connects=${st.connects}`,
      );
    } finally {
      publisher.stop();
      await batcher.stop();
      await spool.close();
      await session.stop();
    }
  });
});
