/**
 * Who may read telemetry, against real servers (Prosody 0.12 and ejabberd 23.01, started by the
 * harness on loopback; no mock).
 *
 * 1. How each server honours each access model (XEP-0060 4.5), on its pubsub component and on PEP:
 *    plain slixmpp clients create a node per model, make one account a member, give another a
 *    presence subscription, and try to fetch and subscribe as each. The table below is what the
 *    servers answered; docs/protocol.md quotes it.
 * 2. The composed agent with the default config (whitelist), through the component and through
 *    PEP: a stranger is refused (subscribe and items), operators and `telemetry.publish.readers`
 *    read; an operator removed from the config and the agent restarted is no longer a member, can
 *    no longer fetch or subscribe, and gets no more notifications.
 * 3. accessModel presence on PEP (the opt-in for operators given as a domain): an operator whose
 *    presence subscription the agent approved reads; a stranger, refused by the agent, does not.
 * 4. Nodes an earlier run left open (the old default), with a stranger subscribed: the agent's
 *    first run with the default cuts the stranger off (no more notifications, no items). ejabberd
 *    keeps subscriptions across a change to whitelist and does not list a PEP node's subscribers,
 *    so there the agent deletes and re-creates the node.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "ltx";
import type { Agent } from "../../agent/main.js";
import { decodeReadings } from "../../agent/telemetry/codec.js";
import { NS_PUBSUB_OWNER } from "../../agent/telemetry/pubsub.js";
import { ejabberdInstalled, startEjabberd } from "../harness/ejabberd.js";
import { OperatorClient, OperatorError } from "../harness/operator.js";
import { startProsody } from "../harness/prosody.js";
import { makeTempDir, type TempDir } from "../harness/tmp.js";
import { agentConfigHead, startComposedAgent, simTemperatureBoard } from "../harness/composed-agent.js";
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

type Answer = "ok" | string;
/** Per service and model: whether create is accepted, then what items/subscribe answer to each kind of account. */
type Row = { create: Answer } | { create: "ok"; member: Answer; presence: Answer; stranger: Answer };
interface Quirks {
  /** The owner lists the node's subscriptions. */
  listSubscriptions: Answer;
  /** A stranger subscribed while the node was open, after the owner switched it to whitelist. */
  afterWhitelist: { notified: boolean; items: Answer };
  /** A subscribed member set back to "none" by the owner: the answer, then notified / fetches. */
  afterMemberNone: { answer: Answer; notified: boolean; items: Answer };
}

const DEVICES = ["acl-comp", "acl-pep", "acl-prs", "acl-mig-comp", "acl-mig-pep"];
const SERVERS: Array<{
  name: string;
  start(): Promise<Server>;
  skip: string | false;
  models: Record<"component" | "PEP", Record<"open" | "presence" | "roster" | "whitelist", Row>>;
  /** What the guard works around (node-guard.ts), per service. */
  quirks: Record<"component" | "PEP", Quirks>;
}> = [
  {
    name: "Prosody 0.12",
    start: () => startProsody({ pubsubAdmins: [...DEVICES, "mx"].map((d) => `${d}@iot.test`) }),
    skip: false,
    models: {
      component: {
        open: { create: "ok", member: "ok", presence: "ok", stranger: "ok" },
        presence: { create: "not-acceptable" },
        roster: { create: "not-acceptable" },
        whitelist: { create: "ok", member: "ok", presence: "forbidden", stranger: "forbidden" },
      },
      PEP: {
        open: { create: "ok", member: "ok", presence: "ok", stranger: "ok" },
        presence: { create: "ok", member: "ok", presence: "ok", stranger: "forbidden" },
        roster: { create: "not-acceptable" },
        whitelist: { create: "ok", member: "ok", presence: "forbidden", stranger: "forbidden" },
      },
    },
    quirks: {
      component: {
        listSubscriptions: "ok",
        afterWhitelist: { notified: false, items: "forbidden" },
        afterMemberNone: { answer: "forbidden", notified: true, items: "forbidden" },
      },
      PEP: {
        listSubscriptions: "ok",
        afterWhitelist: { notified: false, items: "forbidden" },
        afterMemberNone: { answer: "forbidden", notified: true, items: "forbidden" },
      },
    },
  },
  {
    name: "ejabberd 23.01",
    start: () => startEjabberd({ admins: [...DEVICES, "mx"].map((d) => `${d}@iot.test`) }),
    skip: ejabberdInstalled() ? false : "ejabberd is not installed (scripts/setup installs it)",
    models: {
      component: {
        open: { create: "ok", member: "ok", presence: "ok", stranger: "ok" },
        presence: { create: "ok", member: "not-authorized", presence: "ok", stranger: "not-authorized" },
        roster: { create: "ok", member: "not-authorized", presence: "not-authorized", stranger: "not-authorized" },
        whitelist: { create: "ok", member: "ok", presence: "not-allowed", stranger: "not-allowed" },
      },
      PEP: {
        open: { create: "ok", member: "ok", presence: "ok", stranger: "ok" },
        presence: { create: "ok", member: "not-authorized", presence: "ok", stranger: "not-authorized" },
        roster: { create: "ok", member: "not-authorized", presence: "not-authorized", stranger: "not-authorized" },
        whitelist: { create: "ok", member: "ok", presence: "not-allowed", stranger: "not-allowed" },
      },
    },
    quirks: {
      component: {
        listSubscriptions: "ok",
        afterWhitelist: { notified: true, items: "ok" },
        afterMemberNone: { answer: "ok", notified: true, items: "ok" },
      },
      PEP: {
        listSubscriptions: "feature-not-implemented",
        afterWhitelist: { notified: true, items: "ok" },
        afterMemberNone: { answer: "ok", notified: true, items: "ok" },
      },
    },
  },
];

const PASS = "acl-device-pass";

/** waitFor for a condition that needs a round trip. */
async function eventually(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
const answer = (p: Promise<unknown>): Promise<Answer> =>
  p.then(
    () => "ok",
    (e: unknown) => String((e as { context?: { condition?: string } }).context?.condition ?? e),
  );

function configText(server: Server, dir: string, id: string, o: { pep: boolean; operators: string[]; extra?: string }) {
  const head = agentConfigHead({
    id,
    dataDir: join(dir, id),
    domain: server.domain,
    port: server.port,
    caFile: server.caFile,
    pubsubService: o.pep ? null : server.pubsubJid,
    operators: o.operators,
  });
  return `${head}${simTemperatureBoard()}telemetry:
  batch: { maxReadings: 5, maxAgeMs: 200 }
  publish:
    maxItems: 20
    readers: [dashboard@${server.domain}]
${o.extra ?? ""}`;
}

for (const server of SERVERS) {
  describe(`telemetry access on ${server.name}`, { skip: server.skip }, () => {
    let xmpp: Server;
    let dir: TempDir;
    const clients: Record<string, OperatorClient> = {};
    const agents: Record<string, { agent: Agent; jid: string }> = {};

    before(async () => {
      dir = makeTempDir("acl-");
      xmpp = await server.start();
      const accounts = ["operator", "op2", "dashboard", "stranger", "mx", "member", "friend"];
      await Promise.all([...DEVICES, ...accounts].map((a) => xmpp.register(a, PASS)));
      for (const a of accounts)
        clients[a] = await OperatorClient.login(xmpp, a, PASS, { name: `acl-${a}`, maxEvents: 20_000 });
    });

    after(async () => {
      for (const c of Object.values(clients)) await c.stop();
      for (const a of Object.values(agents)) await a.agent.stop();
      await xmpp?.stop();
      dir?.remove();
    });

    it("honours the access models as the table says (component and PEP)", async () => {
      const { mx, member, friend, stranger } = clients as Record<string, OperatorClient>;
      await friend!.subscribePresence(`mx@${xmpp.domain}`);
      await sleep(300);
      await mx!.acceptSubscription(`friend@${xmpp.domain}`, false);
      await eventually(
        async () => (await mx!.roster()).some((r) => r.jid === `friend@${xmpp.domain}` && r.subscription === "from"),
        5000,
        "friend holds a presence subscription to mx",
      );
      const seen: Record<string, Record<string, Row>> = {};
      for (const [kind, svc] of [
        ["component", xmpp.pubsubJid],
        ["PEP", `mx@${xmpp.domain}`],
      ] as const) {
        seen[kind] = {};
        for (const model of ["open", "presence", "roster", "whitelist"] as const) {
          const node = `models/${kind}/${model}`;
          const create = await answer(mx!.pubsubCreate(svc, node, { "pubsub#access_model": model }));
          if (create !== "ok") {
            seen[kind]![model] = { create };
            continue;
          }
          await mx!.publish(svc, node, "<x xmlns='urn:test'/>", { itemId: "i1" });
          await mx!.iq(
            svc,
            "set",
            `<pubsub xmlns="${NS_PUBSUB_OWNER}"><affiliations node="${node}"><affiliation jid="member@${xmpp.domain}" affiliation="member"/></affiliations></pubsub>`,
          );
          const row: Record<string, Answer> = { create };
          for (const [who, c] of [
            ["member", member!],
            ["presence", friend!],
            ["stranger", stranger!],
          ] as const) {
            const items = await answer(c.getItems(svc, node));
            const subscribe = await answer(c.subscribe(svc, node));
            assert.equal(subscribe, items, `${kind} ${model} ${who}: subscribe and items answer alike`);
            row[who] = items;
          }
          seen[kind]![model] = row as Row;
        }
      }
      assert.deepEqual(seen, server.models);
    });

    it("keeps subscriptions the owner would expect gone, as the quirks table says (what the agent works around)", async () => {
      const { mx, member, stranger } = clients as Record<string, OperatorClient>;
      const seen: Record<string, Quirks> = {};
      const owner = (svc: string, xml: string, type: "get" | "set" = "set") =>
        mx!.iq(svc, type, `<pubsub xmlns="${NS_PUBSUB_OWNER}">${xml}</pubsub>`);
      const notified = async (c: OperatorClient, svc: string, node: string, id: string) => {
        c.clearEvents();
        await mx!.publish(svc, node, "<x xmlns='urn:test'/>", { itemId: id });
        // A notification travels before the publish result comes back to the owner; give it a margin.
        await sleep(500);
        return c.pubsubItems().some((e) => e.node === node);
      };
      for (const [kind, svc] of [
        ["component", xmpp.pubsubJid],
        ["PEP", `mx@${xmpp.domain}`],
      ] as const) {
        const a = `quirks/${kind}/open-then-whitelist`;
        await mx!.pubsubCreate(svc, a, { "pubsub#access_model": "open" });
        await stranger!.subscribe(svc, a);
        await owner(
          svc,
          `<configure node="${a}"><x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE" type="hidden"><value>http://jabber.org/protocol/pubsub#node_config</value></field><field var="pubsub#access_model"><value>whitelist</value></field></x></configure>`,
        );
        const afterWhitelist = {
          notified: await notified(stranger!, svc, a, "w1"),
          items: await answer(stranger!.getItems(svc, a)),
        };
        const listSubscriptions = await answer(owner(svc, `<subscriptions node="${a}"/>`, "get"));
        const b = `quirks/${kind}/member-none`;
        await mx!.pubsubCreate(svc, b, { "pubsub#access_model": "whitelist" });
        await owner(
          svc,
          `<affiliations node="${b}"><affiliation jid="member@${xmpp.domain}" affiliation="member"/></affiliations>`,
        );
        await member!.subscribe(svc, b);
        const none = await answer(
          owner(
            svc,
            `<affiliations node="${b}"><affiliation jid="member@${xmpp.domain}" affiliation="none"/></affiliations>`,
          ),
        );
        const afterMemberNone = {
          answer: none,
          notified: await notified(member!, svc, b, "n1"),
          items: await answer(member!.getItems(svc, b)),
        };
        seen[kind] = { listSubscriptions, afterWhitelist, afterMemberNone };
      }
      assert.deepEqual(seen, server.quirks);
    });

    async function start(id: string, o: { pep: boolean; operators: string[]; extra?: string }) {
      const { agent, jid } = await startComposedAgent({
        dir: dir.path,
        name: `${id}.yaml`,
        config: configText(xmpp, dir.path, id, o),
        password: PASS,
      });
      agents[id] = { agent, jid };
      return { agent, jid, bare: jid.split("/")[0]! };
    }

    for (const mode of ["component", "pep"] as const) {
      const id = mode === "pep" ? "acl-pep" : "acl-comp";
      const operators = () => [`operator@${xmpp.domain}`, `op2@${xmpp.domain}`];
      const service = (bare: string) => (mode === "pep" ? bare : xmpp.pubsubJid);
      const nodes = { telemetry: `devices/${id}/telemetry`, status: `devices/${id}/status` };

      it(`default config (${mode}): a stranger is refused; operators and readers read`, async () => {
        const { agent, bare } = await start(id, { pep: mode === "pep", operators: operators() });
        const svc = service(bare);
        await waitFor(() => (agent.telemetry!.status()?.publisher.publishedItems ?? 0) >= 2, 15_000, "items published");
        assert.equal(agent.telemetry!.status()!.access.model, "whitelist");
        const { stranger, operator, op2, dashboard } = clients as Record<string, OperatorClient>;
        for (const node of [nodes.telemetry, nodes.status]) {
          await assert.rejects(stranger!.getItems(svc, node), /forbidden|not-allowed/, `stranger fetching ${node}`);
          await assert.rejects(stranger!.subscribe(svc, node), /forbidden|not-allowed/, `stranger subscribing ${node}`);
        }
        for (const c of [operator!, op2!, dashboard!]) {
          const { items } = await c.getItems(svc, nodes.telemetry);
          assert.ok(items.length > 0, `${c.name} fetches readings`);
          assert.ok(decodeReadings(parse(items[0]!.payload!)).readings.length > 0);
          const st = await c.getItems(svc, nodes.status);
          assert.equal(st.items[0]?.id, "current");
          assert.equal((await c.subscribe(svc, nodes.telemetry)).subscription, "subscribed");
        }
        await waitFor(
          () => op2!.pubsubItems().some((e) => e.node === nodes.telemetry),
          10_000,
          "op2 receives notifications",
        );
      });

      it(`an operator removed from the config and the agent restarted (${mode}) is no longer a member`, async () => {
        const old = agents[id]!;
        await old.agent.stop();
        delete agents[id];
        const { agent, bare } = await start(id, { pep: mode === "pep", operators: [`operator@${xmpp.domain}`] });
        const svc = service(bare);
        const published = agent.telemetry!.status()!.publisher.publishedItems;
        await waitFor(
          () => (agent.telemetry!.status()?.publisher.publishedItems ?? 0) >= published + 1,
          15_000,
          "publishing after the restart",
        );
        const { operator, op2 } = clients as Record<string, OperatorClient>;
        // The owner's view (the device account, another resource): op2 is gone, the others stay.
        const owner = await OperatorClient.login(xmpp, id, PASS, { name: `acl-owner-${mode}`, resource: "inspect" });
        try {
          for (const node of [nodes.telemetry, nodes.status]) {
            const { xml } = await owner.iq(
              svc,
              "get",
              `<pubsub xmlns="${NS_PUBSUB_OWNER}"><affiliations node="${node}"/></pubsub>`,
            );
            assert.doesNotMatch(xml, /op2@/, `${node}: op2 no longer affiliated`);
            assert.match(xml, /jid="operator@[^"]+" affiliation="member"|affiliation="member" jid="operator@/);
            assert.match(xml, /jid="dashboard@[^"]+" affiliation="member"|affiliation="member" jid="dashboard@/);
            // ejabberd does not list a PEP node's subscriptions (feature-not-implemented); the
            // notifications checked below show the subscription is gone there too.
            const subs = await owner
              .iq(svc, "get", `<pubsub xmlns="${NS_PUBSUB_OWNER}"><subscriptions node="${node}"/></pubsub>`)
              .catch((e: unknown) => {
                if (e instanceof OperatorError && e.condition === "feature-not-implemented" && mode === "pep")
                  return { xml: "" };
                throw e;
              });
            assert.doesNotMatch(subs.xml, /op2@/, `${node}: op2's subscription removed`);
          }
        } finally {
          await owner.stop();
        }
        await assert.rejects(op2!.getItems(svc, nodes.telemetry), /forbidden|not-allowed/);
        await assert.rejects(op2!.subscribe(svc, nodes.telemetry), /forbidden|not-allowed/);
        // No more notifications for op2, while the remaining operator keeps getting them.
        op2!.clearEvents();
        operator!.clearEvents();
        await waitFor(
          () => operator!.pubsubItems().filter((e) => e.node === nodes.telemetry).length >= 3,
          15_000,
          "three more items at the operator",
        );
        assert.equal(op2!.pubsubItems().filter((e) => e.node === nodes.telemetry).length, 0);
      });
    }

    it("accessModel presence on PEP: an operator the agent approved reads, a stranger it refused does not", async () => {
      const { agent, bare } = await start("acl-prs", {
        pep: true,
        operators: [`operator@${xmpp.domain}`],
        extra: "    accessModel: presence\n",
      });
      const node = "devices/acl-prs/telemetry";
      await waitFor(() => (agent.telemetry!.status()?.publisher.publishedItems ?? 0) >= 1, 15_000, "an item");
      const { operator, stranger } = clients as Record<string, OperatorClient>;
      await operator!.subscribePresence(bare);
      await stranger!.subscribePresence(bare);
      await eventually(
        async () => (await operator!.roster()).some((r) => r.jid === bare && ["to", "both"].includes(r.subscription)),
        10_000,
        "the agent approved the operator's presence subscription",
      );
      const { items } = await operator!.getItems(bare, node);
      assert.ok(items.length > 0);
      await assert.rejects(stranger!.getItems(bare, node), /forbidden|not-authorized/);
      await assert.rejects(stranger!.subscribe(bare, node), /forbidden|not-authorized/);
    });

    for (const mode of ["component", "pep"] as const) {
      it(`a node an earlier run left open (${mode}): a stranger who subscribed then is cut off by the default`, async () => {
        const id = mode === "pep" ? "acl-mig-pep" : "acl-mig-comp";
        const node = `devices/${id}/telemetry`;
        const first = await start(id, {
          pep: mode === "pep",
          operators: [`operator@${xmpp.domain}`],
          extra: "    accessModel: open\n",
        });
        const svc = mode === "pep" ? first.bare : xmpp.pubsubJid;
        await waitFor(() => (first.agent.telemetry!.status()?.publisher.publishedItems ?? 0) >= 1, 15_000, "an item");
        const { stranger, operator } = clients as Record<string, OperatorClient>;
        assert.equal((await stranger!.subscribe(svc, node)).subscription, "subscribed");
        await waitFor(
          () => stranger!.pubsubItems().some((e) => e.node === node),
          10_000,
          "the stranger reads the open node",
        );
        await first.agent.stop();
        delete agents[id];
        const again = await start(id, { pep: mode === "pep", operators: [`operator@${xmpp.domain}`] });
        await waitFor(() => (again.agent.telemetry!.status()?.publisher.publishedItems ?? 0) >= 1, 15_000, "an item");
        await operator!.subscribe(svc, node);
        stranger!.clearEvents();
        operator!.clearEvents();
        await waitFor(
          () => operator!.pubsubItems().filter((e) => e.node === node).length >= 3,
          15_000,
          "three items at the operator",
        );
        assert.equal(
          stranger!.pubsubItems().filter((e) => e.node === node).length,
          0,
          "no more items for the stranger",
        );
        await assert.rejects(stranger!.getItems(svc, node), /forbidden|not-allowed/);
      });
    }
  });
}
