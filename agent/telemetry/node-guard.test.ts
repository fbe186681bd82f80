import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isAgentError } from "../../kernel/errors.js";
import { PubsubError } from "./errors.js";
import { bareOf, judgeOwnership, NodeGuard, planReaders } from "./node-guard.js";
import type { AffiliationEntry } from "./pubsub.js";
import { PubsubFakeSession, settle } from "./testing/index.js";

const SELF = "dev1@iot.test";
const NODE = "devices/dev1/telemetry";
const aff = (jid: string, affiliation: AffiliationEntry["affiliation"]): AffiliationEntry => ({ jid, affiliation });

describe("node ownership", () => {
  it("bareOf drops the resource and folds case", () => {
    assert.equal(bareOf("Dev1@IoT.test/agent"), "dev1@iot.test");
    assert.equal(bareOf("pubsub.iot.test"), "pubsub.iot.test");
  });

  it("judges an owner list: the device must own the node and every other owner be trusted", () => {
    const none = new Set<string>();
    assert.deepEqual(judgeOwnership([aff("Dev1@iot.test", "owner"), aff("op@iot.test", "member")], SELF, none), {
      owned: true,
    });
    assert.deepEqual(judgeOwnership([aff("eve@iot.test", "owner")], SELF, none), {
      owned: false,
      reason: "not-owner",
      owners: ["eve@iot.test"],
    });
    // Listed, but not as an owner (an admin made the node and the device a publisher).
    assert.deepEqual(judgeOwnership([aff(SELF, "publisher")], SELF, none), {
      owned: false,
      reason: "not-owner",
      owners: [],
    });
    assert.deepEqual(judgeOwnership([], SELF, none), { owned: false, reason: "not-owner", owners: [] });
    assert.deepEqual(judgeOwnership([aff(SELF, "owner"), aff("eve@iot.test", "owner")], SELF, none), {
      owned: false,
      reason: "untrusted-owner",
      owners: ["eve@iot.test"],
    });
    assert.deepEqual(
      judgeOwnership([aff(SELF, "owner"), aff("admin@iot.test", "owner")], SELF, new Set(["admin@iot.test"])),
      { owned: true },
    );
  });

  it("plans readers: members added and removed, owners/publishers/outcasts-not-named untouched, subscriptions of non-readers dropped", () => {
    const plan = planReaders(
      [
        aff(SELF, "owner"),
        aff("keep@iot.test", "member"),
        aff("gone@iot.test", "member"),
        aff("pub@iot.test", "publisher"),
        aff("out@iot.test", "outcast"),
        aff("back@iot.test", "outcast"),
      ],
      [
        { jid: "gone@iot.test/x", subscription: "subscribed" },
        { jid: "keep@iot.test", subscription: "subscribed" },
        { jid: "pub@iot.test", subscription: "subscribed" },
        { jid: `${SELF}/agent`, subscription: "subscribed" },
        { jid: "stranger@iot.test", subscription: "subscribed" },
        { jid: "pending@iot.test", subscription: "none" },
      ],
      new Set(["keep@iot.test", "new@iot.test", "back@iot.test", SELF]),
      SELF,
    );
    assert.deepEqual(plan.affiliations, [
      aff("new@iot.test", "member"),
      aff("back@iot.test", "member"),
      aff("gone@iot.test", "none"),
    ]);
    assert.deepEqual(
      plan.unsubscribe.map((s) => s.jid),
      ["gone@iot.test/x", "stranger@iot.test"],
    );
    // Without a subscription list (not whitelist) nothing is unsubscribed.
    assert.deepEqual(planReaders([aff(SELF, "owner")], undefined, new Set(), SELF), {
      affiliations: [],
      unsubscribe: [],
    });
  });
});

describe("NodeGuard against a fake session", () => {
  it("verifyOwner: forbidden is not-owner, item-not-found passes through, a good list resolves", async () => {
    const session = new PubsubFakeSession();
    const guard = new NodeGuard({ session, timeoutMs: 1000, readers: [], trustedOwners: [] });
    assert.deepEqual(await guard.verifyOwner("pubsub.iot.test", NODE, SELF), [aff(SELF, "owner")]);
    session.policy = () => ({ error: "forbidden", type: "auth" });
    await assert.rejects(
      guard.verifyOwner("pubsub.iot.test", NODE, SELF),
      (e: unknown) =>
        e instanceof PubsubError &&
        e.code === "pubsub_node_not_owned" &&
        e.context.reason === "not-owner" &&
        e.context.condition === "forbidden" &&
        isAgentError(e.cause, "iq_error"),
    );
    session.policy = () => ({ error: "item-not-found" });
    await assert.rejects(guard.verifyOwner("pubsub.iot.test", NODE, SELF), (e: unknown) => isAgentError(e, "iq_error"));
    session.policy = () => ({ code: "iq_timeout" });
    await assert.rejects(guard.verifyOwner("pubsub.iot.test", NODE, SELF), (e: unknown) =>
      isAgentError(e, "iq_timeout"),
    );
  });

  it("syncReaders under presence: members in step, subscriptions not asked for", async () => {
    const session = new PubsubFakeSession();
    const guard = new NodeGuard({ session, timeoutMs: 1000, readers: ["op@iot.test"], trustedOwners: [] });
    session.nodeAffiliations(NODE).set("old@iot.test", "member");
    const change = await guard.syncReaders(undefined, NODE, SELF, "presence");
    await settle();
    assert.deepEqual(change, {
      added: ["op@iot.test"],
      removed: ["old@iot.test"],
      unsubscribed: [],
      subscriptionsListed: false,
    });
    assert.ok(!session.requests.some((r) => r.toString().includes("subscriptions")));
    assert.deepEqual(
      [...session.nodeAffiliations(NODE)],
      [
        [SELF, "owner"],
        ["op@iot.test", "member"],
      ],
    );
  });

  it("syncReaders under whitelist where subscriptions cannot be listed (ejabberd PEP): members on their way out are unsubscribed one by one", async () => {
    const session = new PubsubFakeSession();
    const guard = new NodeGuard({ session, timeoutMs: 1000, readers: [], trustedOwners: [] });
    session.nodeAffiliations(NODE).set("gone@iot.test", "member");
    session.nodeAffiliations(NODE).set("never@iot.test", "member");
    session.policy = (iq) => {
      const subs = iq.getChild("pubsub")?.getChild("subscriptions");
      if (subs && iq.attrs.type === "get") return { error: "feature-not-implemented" };
      // ejabberd answers bad-request for a JID without a subscription.
      if (subs && subs.getChild("subscription")?.attrs.jid === "never@iot.test") return { error: "bad-request" };
      return "result";
    };
    const change = await guard.syncReaders(undefined, NODE, SELF, "whitelist");
    assert.deepEqual(change, {
      added: [],
      removed: ["gone@iot.test", "never@iot.test"],
      unsubscribed: ["gone@iot.test"],
      subscriptionsListed: false,
    });
    const kinds = session.requests.map((r) => `${r.attrs.type} ${r.getChild("pubsub")!.getChildElements()[0]!.name}`);
    assert.deepEqual(kinds, [
      "get affiliations",
      "get subscriptions",
      "set subscriptions",
      "set subscriptions",
      "set affiliations",
    ]);
    // Any other error is the caller's to report.
    session.policy = (iq) => (iq.getChild("pubsub")?.getChild("subscriptions") ? { error: "forbidden" } : "result");
    await assert.rejects(guard.syncReaders(undefined, NODE, SELF, "whitelist"), (e: unknown) =>
      isAgentError(e, "iq_error"),
    );
  });
});
