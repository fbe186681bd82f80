import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import { type Element, parse } from "ltx";
import { FakeTimers } from "../../kernel/timers.js";
import { StanzaError } from "../../xmpp/stanza-error.js";
import { AdhocCommands, type CommandSessionPort, NS_COMMANDS } from "./adhoc.js";
import { MemoryAuditSink } from "./audit.js";
import { Authorizer } from "./authorize.js";
import { DeviceFailure } from "./ports.js";
import { findForm, parseForm } from "./forms.js";
import { CommandRegistry } from "./registry.js";

const ALICE = "alice@iot.test/gajim.X1";
const BOB = "bob@iot.test/slix";
const EVE = "eve@evil.test/x";
const DEVICE = "dev1@iot.test/agent";

let seq = 0;
function iq(from: string, inner: string): Element {
  return parse(`<iq xmlns="jabber:client" type="set" id="q${++seq}" from="${from}" to="${DEVICE}">${inner}</iq>`);
}
function cmd(node: string, attrs: Record<string, string> = {}, body = ""): string {
  const a = Object.entries(attrs)
    .map(([k, v]) => ` ${k}="${v}"`)
    .join("");
  return `<command xmlns="${NS_COMMANDS}" node="${node}"${a}>${body}</command>`;
}
function submit(values: Record<string, string | string[]>): string {
  const fields = Object.entries(values)
    .map(
      ([k, v]) =>
        `<field var="${k}">${(Array.isArray(v) ? v : [v]).map((x) => `<value>${x}</value>`).join("")}</field>`,
    )
    .join("");
  return `<x xmlns="jabber:x:data" type="submit">${fields}</x>`;
}

async function rejects(p: Promise<unknown>, condition: string, specific?: string, text?: RegExp): Promise<StanzaError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof StanzaError, `expected StanzaError, got ${err}`);
    assert.equal(err.condition, condition, err.text);
    if (specific) assert.equal(err.appCondition?.name, specific);
    if (text) assert.match(err.text ?? "", text);
    return err;
  }
  assert.fail(`expected ${condition}`);
}

const outputs: Record<string, boolean> = { led: false, relay: false };

function buildRegistry(): CommandRegistry {
  const r = new CommandRegistry();
  r.register({
    node: "ping",
    name: "Ping",
    async run() {
      return { notes: [{ type: "info", text: "pong" }] };
    },
  });
  r.register({
    node: "set",
    name: "Set output",
    stages: [
      {
        params: [
          {
            name: "output",
            type: "choice",
            label: "Output",
            required: true,
            options: [{ value: "led" }, { value: "relay" }],
          },
          { name: "value", type: "boolean", label: "On", required: true },
          { name: "pulseMs", type: "integer", label: "Pulse (ms)", min: 1, max: 60_000 },
          { name: "pin", type: "secret", label: "PIN" },
        ],
      },
    ],
    async run({ values }) {
      const o = values.string("output");
      const before = outputs[o];
      outputs[o] = values.boolean("value");
      return { notes: [{ type: "info", text: `Changed ${o}: ${before} -> ${outputs[o]}` }] };
    },
  });
  r.register({
    node: "configure",
    name: "Configure channel",
    stages: [
      {
        title: "Pick",
        params: [
          {
            name: "channel",
            type: "choice",
            label: "Channel",
            required: true,
            options: [{ value: "t1" }, { value: "t2" }],
          },
        ],
      },
      {
        title: "Settings",
        // Stage 2 depends on stage 1: the default interval differs per channel.
        params: ({ values }) => [
          {
            name: "intervalMs",
            type: "integer",
            label: `Interval of ${values.string("channel")}`,
            min: 100,
            max: 3_600_000,
            default: values.string("channel") === "t1" ? 1000 : 5000,
          },
          { name: "enabled", type: "boolean", label: "Enabled", default: true },
        ],
      },
    ],
    async run({ values }) {
      return {
        notes: [{ type: "info", text: `configured ${values.string("channel")}` }],
        form: {
          type: "result",
          fields: [
            { var: "intervalMs", values: [String(values.number("intervalMs"))] },
            { var: "enabled", values: [String(values.boolean("enabled"))] },
          ],
        },
      };
    },
  });
  r.register({
    node: "boom",
    name: "Throws",
    async run() {
      throw new Error("wire cut");
    },
  });
  r.register({
    node: "unplugged",
    name: "Device side fails",
    async run() {
      throw new DeviceFailure("serial_disconnected", "/dev/ttyUSB0 is unplugged", { device: "serial:mcu0" });
    },
  });
  r.register({
    node: "hang",
    name: "Never answers",
    timeoutMs: 500,
    run: () => new Promise(() => {}),
  });
  r.register({
    node: "fails",
    name: "Completes with failure",
    async run() {
      return { failed: true };
    },
  });
  return r;
}

describe("XEP-0050 ad-hoc commands", () => {
  let timers: FakeTimers;
  let audit: MemoryAuditSink;
  let adhoc: AdhocCommands;

  beforeEach(() => {
    timers = new FakeTimers(1_000_000);
    audit = new MemoryAuditSink();
    outputs.led = false;
    outputs.relay = false;
    adhoc = new AdhocCommands({
      registry: buildRegistry(),
      authorizer: new Authorizer([
        { jid: "alice@iot.test", commands: ["*"] },
        { jid: "bob@iot.test", commands: ["ping", "configure"] },
      ]),
      audit,
      timers,
      limits: { sessionTimeoutMs: 60_000, maxSessionsPerRequester: 2, handlerTimeoutMs: 1000 },
      ownJid: () => DEVICE,
      newSessionId: (node) => `${node}-${++seq}`,
    });
  });

  describe("discovery", () => {
    it("lists only the commands the requester may run, with the device's JID", async () => {
      const items = await adhoc.discoItems(BOB, NS_COMMANDS);
      assert.deepEqual(items, [
        { jid: DEVICE, node: "ping", name: "Ping" },
        { jid: DEVICE, node: "configure", name: "Configure channel" },
      ]);
      assert.equal((await adhoc.discoItems(ALICE, NS_COMMANDS))!.length, 7);
      assert.deepEqual(await adhoc.discoItems(EVE, NS_COMMANDS), []);
      assert.equal(await adhoc.discoItems(ALICE, "nope"), undefined);
      assert.deepEqual(await adhoc.discoItems(ALICE, "ping"), []);
    });

    it("answers disco#info per command node, forbidden for an operator not granted it, item-not-found for strangers", async () => {
      const info = await adhoc.discoInfo(BOB, "ping");
      assert.deepEqual(info, {
        identities: [{ category: "automation", type: "command-node", name: "Ping" }],
        features: [NS_COMMANDS, "jabber:x:data"],
      });
      assert.equal((await adhoc.discoInfo(BOB, NS_COMMANDS))!.identities[0]!.type, "command-list");
      await rejects(adhoc.discoInfo(BOB, "set"), "forbidden");
      // A stranger cannot tell an existing command node from a made-up one (both item-not-found).
      assert.equal(await adhoc.discoInfo(EVE, "ping"), undefined);
      assert.equal(await adhoc.discoInfo(EVE, "nope"), undefined);
      assert.equal(await adhoc.discoItems(EVE, "ping"), undefined);
      assert.equal(await adhoc.discoItems(EVE, "nope"), undefined);
      assert.equal(await adhoc.discoInfo(ALICE, "nope"), undefined);
      assert.deepEqual(adhoc.discoNodes(), [
        NS_COMMANDS,
        "ping",
        "set",
        "configure",
        "boom",
        "unplugged",
        "hang",
        "fails",
      ]);
    });
  });

  describe("execution", () => {
    it("runs a command without parameters at once and audits it", async () => {
      const res = await adhoc.handle(iq(BOB, cmd("ping", { action: "execute" })));
      assert.equal(res.attrs.status, "completed");
      assert.equal(res.attrs.node, "ping");
      assert.ok(res.attrs.sessionid);
      assert.equal(res.getChildText("note"), "pong");
      assert.equal(audit.records.length, 1);
      assert.equal(audit.records[0]!.outcome, "completed");
      assert.equal(audit.records[0]!.requester, BOB);
    });

    it("serves a single-stage form: execute -> form with complete, then complete -> completed", async () => {
      const first = await adhoc.handle(iq(ALICE, cmd("set")));
      assert.equal(first.attrs.status, "executing");
      const actions = first.getChild("actions")!;
      assert.equal(actions.attrs.execute, "complete");
      assert.deepEqual(
        actions.getChildElements().map((e) => e.name),
        ["complete"],
      );
      const form = parseForm(findForm(first)!);
      assert.equal(form.type, "form");
      assert.deepEqual(
        form.fields.map((f) => [f.var, f.type, f.required ?? false]),
        [
          ["output", "list-single", true],
          ["value", "boolean", false], // a checkbox is never "required": it defaults to false
          ["pulseMs", "text-single", false],
          ["pin", "text-private", false],
        ],
      );
      const sid = first.attrs.sessionid;
      const done = await adhoc.handle(
        iq(
          ALICE,
          cmd("set", { sessionid: sid, action: "complete" }, submit({ output: "relay", value: "1", pin: "4321" })),
        ),
      );
      assert.equal(done.attrs.status, "completed");
      assert.equal(done.attrs.sessionid, sid);
      assert.match(done.getChildText("note")!, /Changed relay: false -> true/);
      assert.equal(outputs.relay, true);
      const rec = audit.records.at(-1)!;
      assert.equal(rec.outcome, "completed");
      assert.deepEqual(rec.params, { output: "relay", value: true, pin: "[redacted]" });
      assert.equal(adhoc.openSessions, 0);
    });

    it("accepts the single-stage execute a slixmpp script sends (all values, no sessionid)", async () => {
      // Shape captured from slixmpp 1.8's xep_0050 send_command with a filled submit form.
      const stanza = parse(`<iq type="set" to="${DEVICE}" id="a1b2-7" from="${ALICE}" xmlns="jabber:client">
        <command xmlns="http://jabber.org/protocol/commands" node="configure" action="execute">
          <x xmlns="jabber:x:data" type="submit">
            <field var="channel" type="list-single"><value>t2</value></field>
            <field var="intervalMs" type="text-single"><value>2500</value></field>
          </x>
        </command>
      </iq>`);
      const res = await adhoc.handle(stanza);
      assert.equal(res.attrs.status, "completed");
      const result = parseForm(findForm(res)!);
      assert.deepEqual(
        result.fields.map((f) => [f.var, f.values[0]]),
        [
          ["intervalMs", "2500"],
          ["enabled", "true"],
        ],
      );
      assert.equal(adhoc.openSessions, 0);
    });

    it("walks a multi-stage command with next, prev (remembered values) and complete", async () => {
      const s1 = await adhoc.handle(iq(BOB, cmd("configure", { action: "execute" })));
      const sid = s1.attrs.sessionid;
      assert.equal(s1.getChild("actions")!.attrs.execute, "next");
      assert.deepEqual(
        s1
          .getChild("actions")!
          .getChildElements()
          .map((e) => e.name),
        ["next"],
      );

      const s2 = await adhoc.handle(
        iq(BOB, cmd("configure", { sessionid: sid, action: "next" }, submit({ channel: "t2" }))),
      );
      assert.equal(s2.attrs.status, "executing");
      assert.deepEqual(
        s2
          .getChild("actions")!
          .getChildElements()
          .map((e) => e.name),
        ["prev", "complete"],
      );
      const f2 = parseForm(findForm(s2)!);
      assert.equal(f2.title, "Settings");
      assert.equal(f2.fields[0]!.label, "Interval of t2");
      assert.deepEqual(f2.fields[0]!.values, ["5000"]);

      const back = await adhoc.handle(iq(BOB, cmd("configure", { sessionid: sid, action: "prev" })));
      assert.deepEqual(parseForm(findForm(back)!).fields[0]!.values, ["t2"]);

      // Change the stage-1 answer: stage 2 is recomputed.
      const s2b = await adhoc.handle(iq(BOB, cmd("configure", { sessionid: sid }, submit({ channel: "t1" }))));
      assert.deepEqual(parseForm(findForm(s2b)!).fields[0]!.values, ["1000"]);

      const done = await adhoc.handle(
        iq(BOB, cmd("configure", { sessionid: sid }, submit({ intervalMs: "750", enabled: "false" }))),
      );
      assert.equal(done.attrs.status, "completed");
      assert.equal(done.getChildText("note"), "configured t1");
      assert.deepEqual(audit.records.at(-1)!.params, { channel: "t1", intervalMs: 750, enabled: false });
    });

    it("cancels a session, then answers session-expired for its id", async () => {
      const s1 = await adhoc.handle(iq(BOB, cmd("configure")));
      const sid = s1.attrs.sessionid;
      const c = await adhoc.handle(iq(BOB, cmd("configure", { sessionid: sid, action: "cancel" })));
      assert.equal(c.attrs.status, "canceled");
      assert.equal(audit.records.at(-1)!.outcome, "canceled");
      await rejects(
        adhoc.handle(iq(BOB, cmd("configure", { sessionid: sid, action: "next" }))),
        "not-allowed",
        "session-expired",
      );
    });

    it("completes early with defaults for later stages when they have them", async () => {
      const s1 = await adhoc.handle(iq(BOB, cmd("configure")));
      const done = await adhoc.handle(
        iq(BOB, cmd("configure", { sessionid: s1.attrs.sessionid, action: "complete" }, submit({ channel: "t1" }))),
      );
      assert.equal(done.attrs.status, "completed");
      assert.deepEqual(audit.records.at(-1)!.params, { channel: "t1", intervalMs: 1000, enabled: true });
    });
  });

  describe("errors", () => {
    it("answers bad-request naming the field, and keeps the session open for a corrected try", async () => {
      const s1 = await adhoc.handle(iq(ALICE, cmd("set")));
      const sid = s1.attrs.sessionid;
      const err = await rejects(
        adhoc.handle(iq(ALICE, cmd("set", { sessionid: sid }, submit({ output: "fan", value: "1", pulseMs: "0" })))),
        "bad-request",
        "bad-payload",
      );
      assert.match(err.text!, /Field 'output' \(Output\): must be one of led, relay, got "fan"/);
      assert.match(err.text!, /Field 'pulseMs' \(Pulse \(ms\)\): must be >= 1, got 0/);
      assert.equal(err.type, "modify");
      assert.equal(audit.records.at(-1)!.outcome, "rejected");
      const ok = await adhoc.handle(
        iq(ALICE, cmd("set", { sessionid: sid }, submit({ output: "led", value: "true" }))),
      );
      assert.equal(ok.attrs.status, "completed");
      assert.equal(outputs.led, true);
    });

    it("rejects single-stage values that are missing, bad, or belong to no field", async () => {
      await rejects(
        adhoc.handle(iq(ALICE, cmd("set", {}, submit({ value: "1" })))),
        "bad-request",
        "bad-payload",
        /'output'.*is required/,
      );
      await rejects(
        adhoc.handle(iq(ALICE, cmd("set", {}, submit({ output: "led", value: "1", colour: "red" })))),
        "bad-request",
        "bad-payload",
        /'colour': is not a field of set/,
      );
      await rejects(adhoc.handle(iq(ALICE, cmd("ping", {}, submit({ x: "1" })))), "bad-request", "bad-payload", /'x'/);
      assert.equal(outputs.led, false);
    });

    it("answers bad-sessionid for an unknown id and for someone else's session", async () => {
      await rejects(
        adhoc.handle(iq(ALICE, cmd("configure", { sessionid: "made-up" }))),
        "bad-request",
        "bad-sessionid",
      );
      const s1 = await adhoc.handle(iq(BOB, cmd("configure")));
      await rejects(
        adhoc.handle(iq("bob@iot.test/other-device", cmd("configure", { sessionid: s1.attrs.sessionid }))),
        "bad-request",
        "bad-sessionid",
      );
      await rejects(
        adhoc.handle(iq(ALICE, cmd("set", { sessionid: s1.attrs.sessionid }))),
        "bad-request",
        "bad-sessionid",
      );
    });

    it("answers item-not-found for an unknown node, forbidden for a node not granted, and audits both", async () => {
      await rejects(adhoc.handle(iq(ALICE, cmd("nope"))), "item-not-found");
      await rejects(adhoc.handle(iq(BOB, cmd("set", {}, submit({ output: "led", value: "1" })))), "forbidden");
      assert.equal(outputs.led, false);
      assert.deepEqual(
        audit.records.map((r) => [r.node, r.outcome]),
        [
          ["nope", "rejected"],
          ["set", "forbidden"],
        ],
      );
    });

    it("forbids every command to a non-operator, without running it, and audits the attempt", async () => {
      await rejects(adhoc.handle(iq(EVE, cmd("set", {}, submit({ output: "led", value: "1" })))), "forbidden");
      await rejects(adhoc.handle(iq(EVE, cmd("nope"))), "forbidden");
      assert.equal(outputs.led, false);
      assert.equal(audit.records[0]!.requester, EVE);
      assert.equal(audit.records[0]!.outcome, "forbidden");
    });

    it("answers malformed-action, bad-action and bad-payload", async () => {
      await rejects(adhoc.handle(iq(ALICE, cmd("ping", { action: "explode" }))), "bad-request", "malformed-action");
      await rejects(adhoc.handle(iq(ALICE, cmd("configure", { action: "prev" }))), "bad-request", "bad-action");
      const s1 = await adhoc.handle(iq(ALICE, cmd("configure")));
      await rejects(
        adhoc.handle(iq(ALICE, cmd("configure", { sessionid: s1.attrs.sessionid, action: "prev" }))),
        "bad-request",
        "bad-action",
      );
      await rejects(
        adhoc.handle(
          iq(ALICE, cmd("set", {}, `<x xmlns="jabber:x:data" type="submit"><field var="a"/><field var="a"/></x>`)),
        ),
        "bad-request",
        "bad-payload",
      );
      await rejects(adhoc.handle(iq(ALICE, `<command xmlns="${NS_COMMANDS}"/>`)), "bad-request");
    });

    it("times out an idle session, audits it, and answers session-expired afterwards", async () => {
      const s1 = await adhoc.handle(iq(BOB, cmd("configure")));
      timers.advance(59_000);
      // Activity re-arms the timeout.
      await adhoc.handle(iq(BOB, cmd("configure", { sessionid: s1.attrs.sessionid }, submit({ channel: "t1" }))));
      timers.advance(59_000);
      assert.equal(adhoc.openSessions, 1);
      timers.advance(2_000);
      assert.equal(adhoc.openSessions, 0);
      assert.equal(audit.records.at(-1)!.outcome, "expired");
      await rejects(
        adhoc.handle(iq(BOB, cmd("configure", { sessionid: s1.attrs.sessionid }))),
        "not-allowed",
        "session-expired",
      );
      assert.equal(timers.pendingCount, 0);
    });

    it("refuses a request on a session that is still busy with the previous one", async () => {
      const s1 = await adhoc.handle(iq(BOB, cmd("configure")));
      const sid = s1.attrs.sessionid;
      const first = adhoc.handle(iq(BOB, cmd("configure", { sessionid: sid }, submit({ channel: "t1" }))));
      await rejects(
        adhoc.handle(iq(BOB, cmd("configure", { sessionid: sid, action: "cancel" }))),
        "unexpected-request",
      );
      assert.equal((await first).attrs.status, "executing");
    });

    it("bounds open sessions per requester by evicting the least recently used idle one, never by lockout", async () => {
      const a = (await adhoc.handle(iq(BOB, cmd("configure")))).attrs.sessionid;
      timers.advance(10);
      const b = (await adhoc.handle(iq(BOB, cmd("configure")))).attrs.sessionid;
      timers.advance(10);
      // Touch a: b is now the least recently used.
      await adhoc.handle(iq(BOB, cmd("configure", { sessionid: a, action: "prev" }))).catch(() => undefined);
      const c = await adhoc.handle(iq(BOB, cmd("configure")));
      assert.equal(c.attrs.status, "executing");
      await rejects(
        adhoc.handle(iq(BOB, cmd("configure", { sessionid: b }, submit({ channel: "t1" })))),
        "not-allowed",
        "session-expired",
      );
      const stillA = await adhoc.handle(iq(BOB, cmd("configure", { sessionid: a }, submit({ channel: "t1" }))));
      assert.equal(stillA.attrs.status, "executing");
      assert.equal(adhoc.stats.evicted, 1);
      assert.equal(audit.records.find((r) => r.sessionid === b && r.outcome === "expired")?.action, "evict");
      // Another resource of the same account is another requester.
      const other = await adhoc.handle(iq("bob@iot.test/phone", cmd("configure")));
      assert.equal(other.attrs.status, "executing");
    });

    it("ten failed submits in a row, then a valid command: the operator is never locked out", async () => {
      for (let i = 0; i < 10; i++) {
        const first = await adhoc.handle(iq(BOB, cmd("configure")));
        await rejects(
          adhoc.handle(iq(BOB, cmd("configure", { sessionid: first.attrs.sessionid }, submit({ channel: "nope" })))),
          "bad-request",
        );
        // A refused *first* request with a form opens nothing at all.
        await rejects(
          adhoc.handle(iq(BOB, cmd("configure", { action: "next" }, submit({ channel: "nope" })))),
          "bad-request",
        );
      }
      const ok = await adhoc.handle(iq(BOB, cmd("configure")));
      assert.equal(ok.attrs.status, "executing");
      const done = await adhoc.handle(
        iq(BOB, cmd("configure", { sessionid: ok.attrs.sessionid, action: "complete" }, submit({ channel: "t1" }))),
      );
      assert.equal(done.attrs.status, "completed");
    });

    it("accepts a cancel in every form clients send: before any session, on an ended session, on an open one", async () => {
      const before = await adhoc.handle(iq(BOB, cmd("configure", { action: "cancel" })));
      assert.equal(before.attrs.status, "canceled");
      const s = await adhoc.handle(iq(BOB, cmd("configure")));
      const sid = s.attrs.sessionid;
      const open = await adhoc.handle(iq(BOB, cmd("configure", { sessionid: sid, action: "cancel" })));
      assert.equal(open.attrs.status, "canceled");
      const again = await adhoc.handle(iq(BOB, cmd("configure", { sessionid: sid, action: "cancel" })));
      assert.equal(again.attrs.status, "canceled");
      // Someone else's live session is still not theirs to touch.
      const alices = (await adhoc.handle(iq(ALICE, cmd("configure")))).attrs.sessionid;
      await rejects(adhoc.handle(iq(BOB, cmd("configure", { sessionid: alices, action: "cancel" }))), "bad-request");
    });

    it("an untouched boolean arrives with no value, or not at all, and means false", async () => {
      outputs.led = true;
      const first = await adhoc.handle(iq(ALICE, cmd("set")));
      const sid = first.attrs.sessionid;
      // What Gajim 1.7 and profanity 0.13 send for a box left unticked: the field with no <value/>.
      const off = await adhoc.handle(
        iq(
          ALICE,
          cmd(
            "set",
            { sessionid: sid, action: "complete" },
            `<x xmlns="jabber:x:data" type="submit"><field var="output"><value>led</value></field><field var="value"/></x>`,
          ),
        ),
      );
      assert.equal(off.attrs.status, "completed");
      assert.equal(outputs.led, false);
      outputs.led = true;
      const absent = await adhoc.handle(iq(ALICE, cmd("set", {}, submit({ output: "led" }))));
      assert.equal(absent.attrs.status, "completed");
      assert.equal(outputs.led, false);
    });

    it("turns a throwing handler into internal-server-error with its message, audited", async () => {
      await rejects(adhoc.handle(iq(ALICE, cmd("boom"))), "internal-server-error", undefined, /boom failed: wire cut/);
      assert.equal(audit.records.at(-1)!.outcome, "error");
    });

    it("answers a device-side failure as completed with an error note 'CODE: message', audited as failed", async () => {
      const res = await adhoc.handle(iq(ALICE, cmd("unplugged")));
      assert.equal(res.attrs.status, "completed");
      const notes = res.getChildren("note");
      assert.equal(notes.length, 1);
      assert.equal(notes[0]!.attrs.type, "error");
      assert.equal(notes[0]!.text(), "serial_disconnected: /dev/ttyUSB0 is unplugged");
      const rec = audit.records.at(-1)!;
      assert.equal(rec.outcome, "failed");
      assert.equal(rec.reason, "serial_disconnected: /dev/ttyUSB0 is unplugged");
      assert.equal(adhoc.stats.deviceFailures, 1);
      assert.equal(adhoc.stats.errors, 0);
    });

    it("answers a handler that outruns its timeout with an error, never a hang", async () => {
      const p = adhoc.handle(iq(ALICE, cmd("hang")));
      const settled = rejects(
        p,
        "internal-server-error",
        undefined,
        /did not finish within 500 ms; its effect is unknown/,
      );
      await new Promise((r) => setImmediate(r));
      timers.advance(500);
      const err = await settled;
      assert.equal(err.type, "wait");
      assert.equal(audit.records.at(-1)!.outcome, "timeout");
      assert.equal(timers.pendingCount, 0);
    });

    it("adds the error note XEP-0050 requires when a command completes but fails", async () => {
      const res = await adhoc.handle(iq(ALICE, cmd("fails")));
      assert.equal(res.attrs.status, "completed");
      assert.equal(res.getChild("note")!.attrs.type, "error");
      assert.equal(audit.records.at(-1)!.outcome, "failed");
    });
  });

  it("registers with the session and unregisters on stop, clearing session timers", async () => {
    const handlers: Array<(iq: Element) => Promise<unknown>> = [];
    let unregistered = 0;
    const session: CommandSessionPort = {
      handleIq(type, name, xmlns, handler) {
        assert.deepEqual([type, name, xmlns], ["set", "command", NS_COMMANDS]);
        handlers.push(handler);
        return () => void unregistered++;
      },
    };
    adhoc.start(session);
    adhoc.start(session);
    assert.equal(handlers.length, 1);
    const res = (await handlers[0]!(iq(BOB, cmd("configure")))) as Element;
    assert.equal(res.attrs.status, "executing");
    adhoc.stop();
    assert.equal(unregistered, 1);
    assert.equal(adhoc.openSessions, 0);
    assert.equal(timers.pendingCount, 0);
  });
});
