/**
 * Stanzas captured from real operator clients (test/fixtures/clients/*.json, how each was captured
 * is in the file) replayed against the command engine with the real built-ins: what Gajim and
 * profanity really send must work, including their habits (untouched booleans, never cancelling).
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeEach, describe, it } from "node:test";
import { type Element, parse } from "ltx";
import { FakeTimers } from "../../kernel/timers.js";
import { StanzaError } from "../../xmpp/stanza-error.js";
import { AdhocCommands } from "./adhoc.js";
import { MemoryAuditSink } from "./audit.js";
import { Authorizer } from "./authorize.js";
import { registerBuiltins } from "./builtin/index.js";
import type { DriversPort, HardwarePort, OutputChange } from "./ports.js";
import { CommandRegistry } from "./registry.js";

interface ClientFixture {
  client: string;
  captured: string;
  stanzas: Record<string, string>;
}

const DIR = join(import.meta.dirname, "..", "..", "test", "fixtures", "clients");
const FIXTURES = readdirSync(DIR)
  .filter((f) => f.endsWith(".json"))
  .map((f) => JSON.parse(readFileSync(join(DIR, f), "utf8")) as ClientFixture);

const OPERATOR = "operator@iot.test/client.X1";
const DEVICE = "sim-01@iot.test/agent";

class Outputs implements HardwarePort {
  readonly levels = new Map<string, boolean>([["relay", false]]);
  restarts = 0;
  async listChannels() {
    return [{ id: "relay", direction: "output" as const, kind: "relay" }];
  }
  async read(channelId: string) {
    return { channelId, value: this.levels.get(channelId) ?? null, timestamp: 0, quality: "good" as const };
  }
  async setOutput(outputId: string, value: boolean): Promise<OutputChange> {
    const previous = this.levels.get(outputId);
    this.levels.set(outputId, value);
    return { outputId, previous, value };
  }
}

let ids = 0;
function stanza(fx: ClientFixture, name: string, sessionid = ""): Element {
  const xml = fx.stanzas[name];
  assert.ok(xml, `${fx.client}: no stanza ${name}`);
  return parse(
    xml
      .replaceAll("{{from}}", OPERATOR)
      .replaceAll("{{to}}", DEVICE)
      .replaceAll("{{id}}", `fx${++ids}`)
      .replaceAll("{{sessionid}}", sessionid),
  );
}

for (const fx of FIXTURES) {
  describe(`stanzas captured from ${fx.client}`, () => {
    let hw: Outputs;
    let adhoc: AdhocCommands;

    beforeEach(() => {
      hw = new Outputs();
      const drivers: DriversPort = {
        restart: async () => {
          hw.restarts++;
          return { restarted: [] };
        },
      };
      adhoc = new AdhocCommands({
        registry: registerBuiltins(new CommandRegistry(), { hardware: hw, drivers }),
        authorizer: new Authorizer([{ jid: "operator@iot.test", commands: ["*"] }]),
        audit: new MemoryAuditSink(),
        timers: new FakeTimers(),
        limits: { maxSessionsPerRequester: 4 },
      });
    });

    const open = async (node: string) => {
      const r = await adhoc.handle(stanza(fx, `execute-${node}`));
      assert.equal(r.attrs.status, "executing");
      return String(r.attrs.sessionid);
    };

    it("switches an output on, then off with the boolean left untouched", async () => {
      const on = await adhoc.handle(stanza(fx, "submit-set-output-on", await open("set-output")));
      assert.equal(on.attrs.status, "completed");
      assert.equal(hw.levels.get("relay"), true);
      const off = await adhoc.handle(stanza(fx, "submit-set-output-untouched-boolean", await open("set-output")));
      assert.equal(off.attrs.status, "completed");
      assert.equal(hw.levels.get("relay"), false);
    });

    it("ten failed submits in a row (never cancelled), then a valid command works", async () => {
      for (let i = 0; i < 10; i++)
        await assert.rejects(
          adhoc.handle(stanza(fx, "submit-set-output-bad-pulse", await open("set-output"))),
          (e: unknown) => e instanceof StanzaError && e.condition === "bad-request",
        );
      const ok = await adhoc.handle(stanza(fx, "submit-set-output-on", await open("set-output")));
      assert.equal(ok.attrs.status, "completed");
      assert.equal(hw.levels.get("relay"), true);
    });

    it("leaves restart-drivers unconfirmed with the box untouched: nothing restarts", async () => {
      const sid = await open("restart-drivers");
      const untouched = fx.stanzas["submit-restart-drivers-untouched-boolean"];
      if (!untouched) return; // not captured for this client
      const r = await adhoc.handle(stanza(fx, "submit-restart-drivers-untouched-boolean", sid));
      assert.equal(r.attrs.status, "completed");
      assert.equal(hw.restarts, 0);
    });

    it("cancels an open session the way the client does", async () => {
      if (!fx.stanzas["cancel-set-output"]) return; // this client sends no cancel (profanity)
      const r = await adhoc.handle(stanza(fx, "cancel-set-output", await open("set-output")));
      assert.equal(r.attrs.status, "canceled");
    });
  });
}
