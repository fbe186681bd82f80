/**
 * A batch the server refuses for good, against a real Prosody whose pubsub component refuses one
 * item by policy (test/harness/prosody-modules/mod_iot_test_refuse.lua, <policy-violation/>): the
 * composed agent moves it to the dead-letter file after telemetry.publish.deadLetter.afterTries,
 * keeps publishing the readings behind it, and says so in `status` and in its presence.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "ltx";
import type { Agent } from "../../agent/main.js";
import { decodeReadings } from "../../agent/telemetry/codec.js";
import type { DeadLetter } from "../../agent/telemetry/dead-letter.js";
import { OperatorClient } from "../harness/operator.js";
import { type ProsodyHandle, startProsody } from "../harness/prosody.js";
import { makeTempDir, type TempDir } from "../harness/tmp.js";
import { agentConfigHead, startComposedAgent, simTemperatureBoard } from "../harness/composed-agent.js";
import { waitFor } from "../xmpp/helpers.js";

const PASS = "dead-letter-pass";
const NODE = "devices/dl-01/telemetry";
const MODULES = join(import.meta.dirname, "..", "harness", "prosody-modules");

describe("a batch refused for good is dead-lettered and the readings behind it flow (real Prosody)", () => {
  let prosody: ProsodyHandle;
  let dir: TempDir;
  let agent: Agent;
  let op: OperatorClient;
  let device: string;

  before(async () => {
    dir = makeTempDir("dead-letter-");
    prosody = await startProsody({
      pubsubAdmins: ["dl-01@iot.test"],
      extraGlobalLua: `plugin_paths = { ${JSON.stringify(MODULES)} }`,
      // The first batch (item r-0-...) is refused by the server's policy, always.
      extraPubsubLua: '  modules_enabled = { "iot_test_refuse" }\n  iot_test_refuse_item = "^r%-0%-"',
    });
    await prosody.register("dl-01", PASS);
    await prosody.register("operator", "op-pass");
    op = await OperatorClient.login(prosody, "operator", "op-pass", { name: "dl-operator" });
    ({ agent, jid: device } = await startComposedAgent({
      dir: dir.path,
      password: PASS,
      config: `${agentConfigHead({ id: "dl-01", dataDir: join(dir.path, "state"), port: prosody.port, caFile: prosody.caFile })}${simTemperatureBoard()}telemetry:
  batch: { maxReadings: 4, maxAgeMs: 200 }
  publish:
    maxItems: 10
    retry: { initialDelayMs: 100, maxDelayMs: 200 }
    deadLetter: { afterTries: 3 }
`,
    }));
  });

  after(async () => {
    await op?.stop();
    await agent?.stop();
    await prosody?.stop();
    dir?.remove();
  });

  it("moves the refused batch to dead-letter.jsonl after 3 refusals, publishes what follows, and says so", async () => {
    await op.subscribePresence(device.split("/")[0]!);
    const letters = () => {
      try {
        return readFileSync(join(dir.path, "state", "telemetry", "dead-letter.jsonl"), "utf8")
          .trim()
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l) as DeadLetter);
      } catch {
        return [];
      }
    };
    await waitFor(() => letters().length === 1, 15_000, "the refused batch in the dead-letter file");
    const [letter] = letters();
    assert.match(letter!.itemId, /^r-0-/);
    assert.equal(letter!.error.condition, "policy-violation");
    assert.equal(letter!.error.tries, 3);
    assert.equal(letter!.readings.length, letter!.lastSeq - letter!.firstSeq + 1);

    // The readings behind it reach the node.
    const { items } = await (async () => {
      let r = await op.getItems("pubsub.iot.test", NODE);
      for (let i = 0; i < 50 && r.items.length < 3; i++) {
        await new Promise((res) => setTimeout(res, 200));
        r = await op.getItems("pubsub.iot.test", NODE);
      }
      return r;
    })();
    const seqs = items.flatMap((i) => decodeReadings(parse(i.payload!)).readings.map((r) => r.seq));
    assert.ok(
      seqs.some((s) => s > letter!.lastSeq),
      `readings after the dead letter published: ${seqs.join(",")}`,
    );
    assert.ok(!items.some((i) => i.id === letter!.itemId), "the refused item is not on the node");

    // status and presence tell the operator.
    const st = await op.execute(device, "status");
    const telemetry = st.form?.fields.find((f) => f.var === "telemetry")?.values[0] ?? "";
    assert.match(telemetry, /1 batch \(\d+ readings\) dead-lettered/);
    await waitFor(
      () => op.presences().some((p) => p.from === device && /dead-lettered/.test(p.status ?? "")),
      10_000,
      "a presence whose status text mentions the dead letters",
    );
  });
});
