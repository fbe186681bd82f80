/**
 * The distributed engine of issue 15: a two-node ejabberd 23.01 cluster on loopback, sharing one
 * PostgreSQL database, with the shipped fleet.yml (test/harness/ejabberd-cluster.ts explains how the
 * nodes reach each other). The cluster itself, not the agent's failover: one account on both nodes,
 * messages and pubsub notifications routed from node A to node B, node B killed with SIGKILL while
 * node A keeps serving, node B started again and back in the cluster. And what XEP-0198 stream
 * resumption does across nodes: a session bound on A, its TCP link cut, resumed on B.
 *
 * Found on ejabberd 23.01 (sm_db_type mnesia, the session table shared by the cluster): while the
 * node holding a session is alive, any node resumes it. Node B answers `<resumed h=.../>` to a
 * <resume/> for a session bound on A, the session moves to B (user_sessions_info names B), and what
 * A queued while the link was down is resent on B. When the node holding a session dies, the
 * session dies with it: the survivor answers `<failed xmlns="urn:xmpp:sm:3"><item-not-found/>
 * <text>Previous session not found</text></failed>`, without an `h`, so a client cannot tell which
 * of its unacknowledged stanzas arrived: it binds anew and must resend them all (duplicates
 * possible, losses not).
 *
 * Also found: ejabberd 23.01 ranks the sessions of one full JID by an SID made of the wall-clock
 * second and a counter of the node that made it (misc:unique_timestamp/0, `{MegaSecs, Secs,
 * unique_integer rem 1000000}`), and on a new session kicks every one but the highest
 * (ejabberd_sm:check_existing_resources/3). Within one second, SIDs from two nodes compare by two
 * unrelated counters: a session resumed on B in the same second it was bound on A got `<resumed/>`,
 * its queued message, and then a `<conflict/>` stream error, "Replaced by new connection", leaving
 * no session on either node. A client meets this only when a link drops and comes back on another
 * node within a second of binding; the agent then reconnects, binds anew and resends what was not
 * acknowledged. The test resumes in a later second, where the order is the clock's.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { Element } from "ltx";
import { AgentError } from "../../kernel/errors.js";
import { silentLogger } from "../../kernel/log.js";
import { Connection } from "../../xmpp/connection.js";
import { negotiate } from "../../xmpp/negotiate.js";
import { SaltedPasswordCache } from "../../xmpp/sasl/index.js";
import type { XmppSession } from "../../xmpp/session.js";
import { connectTcp } from "../../xmpp/transport.js";
import { ejabberdFleetConfig, ejabberdInstalled } from "../harness/ejabberd.js";
import { type EjabberdClusterHandle, startEjabberdCluster } from "../harness/ejabberd-cluster.js";
import { postgresInstalled } from "../harness/postgres.js";
import { newSession, sleep, testXmppConfig, waitFor, waitOnline } from "../xmpp/helpers.js";

const DOMAIN = "iot.test";
const PASS = "cluster-pass";
const NS_PUBSUB = "http://jabber.org/protocol/pubsub";
const NS_PUBSUB_EVENT = "http://jabber.org/protocol/pubsub#event";
const NS_SM = "urn:xmpp:sm:3";
const NODE = "cluster/telemetry";

const skip = !ejabberdInstalled()
  ? "ejabberd is not installed (scripts/setup installs it)"
  : !postgresInstalled()
    ? "PostgreSQL 15 is not installed (scripts/setup installs postgresql-15)"
    : false;

describe("two-node ejabberd 23.01 cluster on loopback, sharing PostgreSQL", { skip }, () => {
  let cluster: EjabberdClusterHandle;
  const sessions: XmppSession[] = [];
  const raws: Connection[] = [];
  let logins = 0;

  /** An XmppSession of `user` on node i, online, its inbound messages collected. */
  async function login(user: string, i: 0 | 1): Promise<{ s: XmppSession; jid: string; inbox: Element[] }> {
    const node = cluster.nodes[i];
    const server = { host: node.host, port: node.port, domain: DOMAIN, caFile: cluster.caFile };
    // A resource per session: two logins of one account with the same one would replace each other.
    const resource = `${user}-${"ab"[i]}-${++logins}`;
    const s = newSession(testXmppConfig(server, `${user}@${DOMAIN}`, PASS, { resource }), PASS);
    const inbox: Element[] = [];
    s.on("stanza", (el) => {
      if (el.is("message")) inbox.push(el);
    });
    sessions.push(s);
    const online = waitOnline(s, 15_000);
    s.start();
    const { jid } = await online;
    return { s, jid, inbox };
  }

  function chat(to: string, id: string, body: string): Element {
    return new Element("message", { to, id, type: "chat" }).c("body").t(body).root();
  }

  /** The node each of the user's sessions is on (ejabberdctl user_sessions_info on node i). */
  async function sessionNodes(user: string, i: 0 | 1): Promise<Record<string, string>> {
    const out = await cluster.nodes[i].ctl(["user_sessions_info", user, DOMAIN]);
    // connection ip port priority node uptime status resource statustext, tab-separated
    const byResource: Record<string, string> = {};
    for (const line of out.split("\n").filter((l) => l.trim() !== "")) {
      const f = line.split("\t");
      byResource[f[7] ?? "?"] = f[4] ?? "?";
    }
    return byResource;
  }

  /** A bare client on the project's XMPP code with SM (resumable) enabled, or resuming `resume`. */
  async function rawLogin(
    user: string,
    i: 0 | 1,
    resume?: { id: string; h: number },
  ): Promise<{
    conn: Connection;
    jid: string;
    smId: string | undefined;
    answer: string | undefined;
    resumed: boolean;
  }> {
    const node = cluster.nodes[i];
    const socket = await connectTcp({ host: node.host, port: node.port }, 5000);
    const conn = new Connection(socket, DOMAIN, { maxStanzaBytes: 1 << 20, maxDepth: 64, ceilingBytes: 4 << 20 });
    raws.push(conn);
    // Keep the server's answer to <resume/> verbatim.
    let answer: string | undefined;
    const next = conn.next.bind(conn);
    conn.next = async (ms: number, what: string) => {
      const el = await next(ms, what);
      if (el.is("resumed", NS_SM) || el.is("failed", NS_SM)) answer ??= el.toString();
      return el;
    };
    const result = await negotiate(conn, {
      username: user,
      password: PASS,
      resource: "raw",
      tls: { servername: DOMAIN, ca: readFileSync(cluster.caFile, "utf8") },
      directTls: false,
      allowPlain: false,
      saslMechanisms: ["SCRAM-SHA-1"],
      saltedCache: new SaltedPasswordCache(),
      stepTimeoutMs: 10_000,
      sm: { enabled: true, resumeMaxSeconds: 120 },
      ...(resume ? { resume } : {}),
      log: silentLogger,
    });
    return {
      conn,
      jid: result.jid,
      smId: result.sm.kind === "enabled" ? result.sm.id : undefined,
      answer,
      resumed: result.sm.kind === "resumed",
    };
  }

  before(async () => {
    const t0 = Date.now();
    cluster = await startEjabberdCluster({
      ...ejabberdFleetConfig(),
      domain: DOMAIN,
      admins: [`publisher@${DOMAIN}`],
      resumeTimeout: 120,
    });
    const t1 = Date.now();
    await Promise.all(
      ["alice", "bob", "carol", "publisher", "roamer", "stayer", "crasher"].map((u) => cluster.register(u, PASS)),
    );
    const { startMs, joinCommandMs, joinMs } = cluster.timings;
    console.log(
      `# cluster up in ${t1 - t0} ms (PostgreSQL, database, both nodes, join): node A started in ${startMs[0]} ms, node B in ${startMs[1]} ms (in parallel), ejabberdctl join_cluster ${joinCommandMs} ms, until both list each other ${joinMs} ms; 7 accounts ${Date.now() - t1} ms`,
    );
  });

  after(async () => {
    for (const c of raws) c.destroy(new AgentError("test_done", "test finished"));
    await Promise.all(sessions.map((s) => s.stop()));
    await cluster?.stop();
  });

  it("node B joined node A: both list both, each on its own loopback address and port", async () => {
    const [a, b] = cluster.nodes;
    assert.equal(a.node, "ejabberd@127.0.0.2");
    assert.equal(b.node, "ejabberd@127.0.0.3");
    assert.notEqual(a.port, b.port);
    assert.notEqual(a.pid, b.pid);
    const both = [a.node, b.node].sort();
    assert.deepEqual(await cluster.listCluster(0), both);
    assert.deepEqual(await cluster.listCluster(1), both);
  });

  it("an account registered once logs in on both nodes; the session table is shared", async () => {
    const onA = await login("alice", 0);
    const onB = await login("alice", 1);
    assert.notEqual(onA.jid, onB.jid);
    const resA = onA.jid.split("/")[1] ?? "";
    const resB = onB.jid.split("/")[1] ?? "";
    // Either node sees both sessions and where each lives.
    for (const i of [0, 1] as const) {
      const where = await sessionNodes("alice", i);
      assert.equal(where[resA], cluster.nodes[0].node, JSON.stringify(where));
      assert.equal(where[resB], cluster.nodes[1].node, JSON.stringify(where));
    }
    await Promise.all([onA.s.stop(), onB.s.stop()]);
  });

  describe("with alice on node A and bob on node B", () => {
    let alice: Awaited<ReturnType<typeof login>>;
    let bob: Awaited<ReturnType<typeof login>>;

    before(async () => {
      [alice, bob] = await Promise.all([login("alice", 0), login("bob", 1)]);
    });

    it("a message from node A is delivered on node B, and back", async () => {
      await alice.s.send(chat(bob.jid, "a2b", "hello from node A"));
      await waitFor(() => bob.inbox.some((m) => m.attrs.id === "a2b"), 5000, "alice's message on node B");
      assert.equal(bob.inbox.find((m) => m.attrs.id === "a2b")?.getChildText("body"), "hello from node A");
      await bob.s.send(chat(alice.jid, "b2a", "hello from node B"));
      await waitFor(() => alice.inbox.some((m) => m.attrs.id === "b2a"), 5000, "bob's message on node A");
    });

    it("a pubsub item published through node A reaches a subscriber on node B", async () => {
      const publisher = await login("publisher", 0);
      await publisher.s.request(
        new Element("iq", { type: "set", to: cluster.pubsubJid })
          .c("pubsub", { xmlns: NS_PUBSUB })
          .c("create", { node: NODE })
          .root(),
      );
      await bob.s.request(
        new Element("iq", { type: "set", to: cluster.pubsubJid })
          .c("pubsub", { xmlns: NS_PUBSUB })
          .c("subscribe", { node: NODE, jid: bob.jid })
          .root(),
      );
      const t0 = Date.now();
      await publisher.s.request(
        new Element("iq", { type: "set", to: cluster.pubsubJid })
          .c("pubsub", { xmlns: NS_PUBSUB })
          .c("publish", { node: NODE })
          .c("item", { id: "item-1" })
          .c("reading", { xmlns: "urn:example:cluster", seq: "1" })
          .root(),
      );
      const itemOf = (m: Element): Element | undefined =>
        m.getChild("event", NS_PUBSUB_EVENT)?.getChild("items")?.getChild("item");
      await waitFor(() => bob.inbox.some((m) => itemOf(m)?.attrs.id === "item-1"), 5000, "the item on node B");
      console.log(`# pubsub publish on node A -> notification on node B: ${Date.now() - t0} ms`);
      const item = itemOf(bob.inbox.find((m) => itemOf(m)?.attrs.id === "item-1") as Element);
      assert.equal(item?.getChild("reading", "urn:example:cluster")?.attrs.seq, "1");
      // The item is in the shared database.
      const rows = await cluster.postgres.psql(cluster.sql.database, {
        text: `select itemid from pubsub_item i join pubsub_node n on n.nodeid = i.nodeid where n.node = '${NODE}'`,
        tuples: true,
      });
      assert.equal(rows.trim(), "item-1");
      await publisher.s.stop();
    });

    it("XEP-0198: a session bound on node A whose link was cut resumes on node B (<resumed/>) and moves there", async () => {
      // Control: resumption on the node that holds the session.
      const first = await rawLogin("stayer", 0);
      assert.ok(first.smId, "ejabberd gave a resumption id");
      first.conn.destroy(new AgentError("link_cut", "cut by the test"));
      await sleep(300);
      const same = await rawLogin("stayer", 0, { id: first.smId, h: 0 });
      console.log(`# resume on the same node (A): ${same.answer}`);
      assert.equal(same.resumed, true, same.answer);

      // Across nodes: bound on A, link cut, a message queued for it on A, then resumed on B.
      const roamer = await rawLogin("roamer", 0);
      const boundAt = Date.now();
      assert.ok(roamer.smId);
      roamer.conn.destroy(new AgentError("link_cut", "cut by the test"));
      // ejabberd 23.01 orders a resource's sessions by {wall-clock second, a per-node counter}
      // (misc:unique_timestamp/0): a resumption on B within the same second as the bind on A can
      // rank older than it, and B's new session is then the one kicked with <conflict/> ("Replaced
      // by new connection"). Seen here in about half the runs; see the file's header.
      await sleep(Math.max(300, 1000 - (boundAt % 1000) + 100));
      await alice.s.send(chat(roamer.jid, "while-cut", "sent while the link was down"));
      const before = await sessionNodes("roamer", 1);
      const t0 = Date.now();
      const other = await rawLogin("roamer", 1, { id: roamer.smId, h: 0 });
      const resumeMs = Date.now() - t0;
      const got: Element[] = [];
      other.conn.setHandler((el) => {
        if (el.is("message")) got.push(el);
      });
      // The session table names B at once (the CI runs that listed no session here were the
      // same-second ranking above: B's session had been kicked).
      const after = await sessionNodes("roamer", 1);
      console.log(
        `# resume on the other node (bound on A, link cut, <resume/> sent to B): ${other.answer} (connect + TLS + SASL + resume ${resumeMs} ms); sessions before ${JSON.stringify(before)}, after ${JSON.stringify(after)}`,
      );
      assert.equal(other.resumed, true, `node B answered ${other.answer}`);
      assert.match(other.answer ?? "", /^<resumed /);
      assert.deepEqual(after, { raw: cluster.nodes[1].node }, "node B lists the resumed session on itself");
      // The session moved to B: the message queued on A is resent there, new ones are routed there.
      await waitFor(() => got.some((m) => m.attrs.id === "while-cut"), 5000, "the queued message resent on B");
      await alice.s.send(chat(roamer.jid, "after-move", "after the move"));
      await waitFor(() => got.some((m) => m.attrs.id === "after-move"), 5000, "a new message on B");
    });

    it("node B killed with SIGKILL: node A keeps serving and lists itself alone", async () => {
      // A resumable session on B, for the case a device meets when its node dies.
      const crasher = await rawLogin("crasher", 1);
      assert.ok(crasher.smId);
      const bDown = new Promise<void>((resolve) => bob.s.once("offline", () => resolve()));
      const t0 = Date.now();
      await cluster.kill(1);
      assert.equal(cluster.running(1), false);
      await bDown;
      console.log(`# kill -9 node B: bob's session on B offline after ${Date.now() - t0} ms`);
      const a = cluster.nodes[0].node;
      const deadline = Date.now() + 10_000;
      let list = await cluster.listCluster(0);
      while (list.length !== 1 && Date.now() < deadline) {
        await sleep(200);
        list = await cluster.listCluster(0);
      }
      assert.deepEqual(list, [a], "node A's running nodes without B");
      // alice's session on A was not disturbed; a new login on A works, and A routes between them.
      assert.equal(alice.s.state, "online");
      const carol = await login("carol", 0);
      await alice.s.send(chat(carol.jid, "a2c", "node A alone"));
      await waitFor(() => carol.inbox.some((m) => m.attrs.id === "a2c"), 5000, "message on node A");
      // node A dropped the sessions that lived on B.
      const where = await sessionNodes("bob", 0);
      assert.deepEqual(Object.values(where), [], `bob's sessions seen on A: ${JSON.stringify(where)}`);
      await carol.s.stop();
      // The session died with node B: resuming it on A is refused, and a new session is bound.
      const retry = await rawLogin("crasher", 0, { id: crasher.smId, h: 0 });
      console.log(`# resume on node A of a session whose node B was killed: ${retry.answer}`);
      assert.equal(retry.resumed, false);
      assert.match(retry.answer ?? "", /^<failed /);
      assert.ok(retry.jid.startsWith(`crasher@${DOMAIN}/`), "bound anew after <failed/>");
    });

    it("node B started again: it is back in the cluster and serves clients", async () => {
      const bobBack = waitOnline(bob.s, 30_000); // bob's session keeps retrying node B's port
      const r = await cluster.restart(1);
      console.log(
        `# restart node B: started in ${r.startMs} ms, in the cluster ${r.rejoinMs} ms later (by ${r.rejoinedBy})`,
      );
      assert.equal(r.rejoinedBy, "mnesia", "it rejoined from its Mnesia dir, without join_cluster");
      const both = cluster.nodes.map((n) => n.node).sort();
      assert.deepEqual(await cluster.listCluster(0), both);
      assert.deepEqual(await cluster.listCluster(1), both);
      const back = await bobBack;
      assert.equal(back.resumed, false, "the session on the killed node is gone: bob binds anew");
      bob.jid = back.jid;
      await alice.s.send(chat(bob.jid, "a2b-again", "after the restart"));
      await waitFor(() => bob.inbox.some((m) => m.attrs.id === "a2b-again"), 5000, "message on restarted node B");
      const dave = await login("carol", 1);
      assert.ok(dave.jid.startsWith(`carol@${DOMAIN}/`));
      await dave.s.stop();
    });
  });
});
