/**
 * Issue 5's kill test: a telemetry agent (real session to Prosody, file spool with fsync always) is
 * SIGKILLed mid-publish 10 times, restarted on the same data dir each time, then left to drain.
 * Every reading whose batch was spooled must reach the subscriber in exactly one item (a batch
 * re-published after a restart keeps its item id, so it overwrites instead of duplicating).
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { parse } from "ltx";
import { decodeReadings } from "../../agent/telemetry/codec.js";
import { NS_PUBSUB_OWNER } from "../../agent/telemetry/pubsub.js";
import { OperatorClient } from "../harness/operator.js";
import { type ProsodyHandle, startProsody } from "../harness/prosody.js";
import { seededRandom } from "../harness/seeded-random.js";
import { makeTempDir, type TempDir } from "../harness/tmp.js";
import { sleep, waitFor } from "../xmpp/helpers.js";

const here = dirname(fileURLToPath(import.meta.url));
const PASS = "pw-123456";
const NODE = "devices/killme/telemetry";
const KILLS = Number(process.env.KILLS ?? 10);
const random = seededRandom("agent SIGKILL points");

interface Run {
  child: ChildProcess;
  spooled: Array<[number, number]>;
  published: string[];
  online: boolean;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
}

describe("telemetry agent under SIGKILL", () => {
  let prosody: ProsodyHandle;
  let operator: OperatorClient;
  let dir: TempDir;
  const children: ChildProcess[] = [];

  before(async () => {
    dir = makeTempDir("telemetry-kill-");
    prosody = await startProsody({ pubsubAdmins: ["killme@iot.test", "watcher@iot.test"] });
    await prosody.register("killme", PASS);
    await prosody.register("watcher", PASS);
    operator = await OperatorClient.login(prosody, "watcher", PASS, { maxEvents: 50_000 });
    // Made by the watcher so the subscription exists before the first publish; the agent then
    // gets <conflict/> on create, which means "exists". The watcher makes the device a co-owner and
    // the device trusts the watcher as one (telemetry.publish.trustedOwners): a node the device does
    // not own, or shares with an owner it does not trust, gets nothing published (node-guard.ts).
    await operator.pubsubCreate(prosody.pubsubJid, NODE, { "pubsub#max_items": "10" });
    await operator.iq(
      prosody.pubsubJid,
      "set",
      `<pubsub xmlns="${NS_PUBSUB_OWNER}"><affiliations node="${NODE}"><affiliation jid="killme@iot.test" affiliation="owner"/></affiliations></pubsub>`,
    );
    await operator.subscribe(prosody.pubsubJid, NODE);
  });

  after(async () => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    await operator?.stop();
    await prosody?.stop();
    dir?.remove();
  });

  function start(drain: boolean): Run {
    const opts = {
      dataDir: dir.path,
      server: { host: prosody.host, port: prosody.port, domain: prosody.domain, caFile: prosody.caFile },
      jid: "killme@iot.test",
      password: PASS,
      service: prosody.pubsubJid,
      node: NODE,
      drain,
      trustedOwners: ["watcher@iot.test"],
    };
    const child = spawn(
      process.execPath,
      ["--import", "tsx", join(here, "fixtures", "agent-child.ts"), JSON.stringify(opts)],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    children.push(child);
    let err = "";
    let buf = "";
    const run: Run = {
      child,
      spooled: [],
      published: [],
      online: false,
      stderr: () => err,
      done: new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal }))),
    };
    child.stderr!.on("data", (d) => {
      err = (err + d).slice(-4000);
    });
    child.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const [word, a, b] = buf.slice(0, nl).split(" ");
        buf = buf.slice(nl + 1);
        if (word === "online") run.online = true;
        else if (word === "spooled") run.spooled.push([Number(a), Number(b)]);
        else if (word === "published") run.published.push(a!);
      }
    });
    return run;
  }

  it(`every spooled reading is published exactly once across ${KILLS} SIGKILLs`, async () => {
    const spooled = new Set<number>();
    let publishedBeforeKill = 0;
    for (let k = 0; k < KILLS; k++) {
      const run = start(false);
      await waitFor(() => run.published.length >= 5 || run.child.exitCode !== null, 20_000, `run ${k} publishing`);
      assert.equal(run.child.exitCode, null, `child died: ${run.stderr()}`);
      await sleep(random.below(300));
      run.child.kill("SIGKILL");
      await run.done;
      for (const [f, l] of run.spooled) for (let s = f; s <= l; s++) spooled.add(s);
      publishedBeforeKill += run.published.length;
    }
    const drain = start(true);
    await waitFor(() => drain.child.exitCode !== null, 60_000, "drain run to finish").catch((e) => {
      throw new Error(`${e.message}\n${drain.stderr()}`);
    });
    assert.equal(drain.child.exitCode, 0, drain.stderr());
    const lastId = drain.published.at(-1);
    if (lastId)
      await waitFor(() => operator.pubsubItems().some((e) => e.id === lastId), 10_000, "last item at subscriber");
    await sleep(300);

    const byId = new Map<string, number[]>();
    let historical = 0;
    for (const e of operator.pubsubItems()) {
      if (e.node !== NODE || e.kind !== "item" || !e.payload) continue;
      const readings = decodeReadings(parse(e.payload)).readings;
      historical += readings.filter((r) => r.historical).length;
      byId.set(
        e.id!,
        readings.map((r) => r.seq),
      );
    }
    const count = new Map<number, number>();
    for (const seqs of byId.values()) for (const s of seqs) count.set(s, (count.get(s) ?? 0) + 1);
    const missing = [...spooled].filter((s) => !count.has(s));
    const twice = [...count].filter(([, c]) => c > 1).map(([s]) => s);
    assert.deepEqual(missing.slice(0, 20), [], `${missing.length} spooled readings never published`);
    assert.deepEqual(twice.slice(0, 20), [], `${twice.length} readings in two different items`);
    console.log(
      `# agent-sigkill: kills=${KILLS} spooledReadings=${spooled.size} items=${byId.size} ` +
        `historicalReadings=${historical} publishedBeforeKills=${publishedBeforeKill} drainPublished=${drain.published.length}`,
    );
  });
});
