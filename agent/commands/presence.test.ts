import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { describe, it } from "node:test";
import { type Element, parse } from "ltx";
import type { SessionEvents } from "../../xmpp/session.js";
import { Authorizer } from "./authorize.js";
import { decideSubscription, SubscriptionPolicy } from "./presence.js";

const auth = new Authorizer([
  { jid: "alice@iot.test", commands: ["*"] },
  { jid: "ops.test", commands: ["status"] },
]);
const presence = (from: string, type?: string) =>
  parse(`<presence xmlns="jabber:client" from="${from}" to="dev1@iot.test"${type ? ` type="${type}"` : ""}/>`);

describe("subscription policy", () => {
  it("approves operators (by account or domain) and refuses everyone else, answering the bare JID", () => {
    const a = decideSubscription(presence("Alice@iot.test/gajim", "subscribe"), auth);
    assert.equal(a.action, "approve");
    if ("reply" in a) assert.equal(a.reply.toString(), '<presence to="alice@iot.test" type="subscribed"/>');
    assert.equal(decideSubscription(presence("carol@ops.test", "subscribe"), auth).action, "approve");
    const e = decideSubscription(presence("eve@evil.test/x", "subscribe"), auth);
    assert.equal(e.action, "deny");
    if ("reply" in e) assert.equal(e.reply.attrs.type, "unsubscribed");
  });

  it("ignores other presence, messages and garbage senders", () => {
    for (const st of [
      presence("alice@iot.test/x"),
      presence("alice@iot.test/x", "unsubscribe"),
      presence("alice@iot.test/x", "subscribed"),
      presence("a@b@c", "subscribe"),
      parse('<message from="alice@iot.test" type="subscribe"/>'),
    ])
      assert.equal(decideSubscription(st, auth).action, "ignore");
  });

  it("answers through the session while started, and detaches on stop", async () => {
    const sent: Element[] = [];
    const session = Object.assign(new EventEmitter<Pick<SessionEvents, "stanza">>(), {
      send: async (el: Element) => void sent.push(el),
    });
    const policy = new SubscriptionPolicy(auth);
    policy.start(session);
    session.emit("stanza", presence("alice@iot.test/x", "subscribe"));
    session.emit("stanza", presence("eve@evil.test", "subscribe"));
    assert.deepEqual(
      sent.map((s) => [s.attrs.to, s.attrs.type]),
      [
        ["alice@iot.test", "subscribed"],
        ["eve@evil.test", "unsubscribed"],
      ],
    );
    policy.stop();
    session.emit("stanza", presence("alice@iot.test/x", "subscribe"));
    assert.equal(sent.length, 2);
    assert.equal(session.listenerCount("stanza"), 0);
  });
});
