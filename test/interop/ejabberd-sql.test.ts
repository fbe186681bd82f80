/**
 * ejabberd 23.01 as a fleet runs it: storage in PostgreSQL 15 (the shipped
 * deploy/servers/ejabberd/sql-postgresql.yml, its CHANGE-MEs filled in) and the shipped fleet.yml
 * included verbatim, its limits on the c2s listener the way docs/servers.md wires them. ejabberd
 * refuses unknown options at start, so starting at all proves both files load; the tests then show
 * where the data lands (SQL, not Mnesia), that it survives a restart with a fresh Mnesia, and every
 * fleet setting that can be observed from outside.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Element, parse } from "ltx";
import type { Agent } from "../../agent/main.js";
import { decodeReadings } from "../../agent/telemetry/codec.js";
import type { AgentError } from "../../kernel/errors.js";
import { silentLogger } from "../../kernel/log.js";
import { Connection } from "../../xmpp/connection.js";
import { negotiate } from "../../xmpp/negotiate.js";
import { SaltedPasswordCache } from "../../xmpp/sasl/index.js";
import { connectTcp } from "../../xmpp/transport.js";
import { agentConfigHead, simTemperatureBoard, startComposedAgent } from "../harness/composed-agent.js";
import {
  createEjabberdDatabase,
  EJABBERD_FLEET_CONFIG,
  type EjabberdHandle,
  type EjabberdOptions,
  type EjabberdSqlOptions,
  ejabberdFleetConfig,
  ejabberdInstalled,
  startEjabberd,
} from "../harness/ejabberd.js";
import { OperatorClient, OperatorError } from "../harness/operator.js";
import { type PostgresHandle, postgresInstalled, startPostgres } from "../harness/postgres.js";
import { runCommand } from "../harness/process.js";
import { makeTempDir, type TempDir } from "../harness/tmp.js";
import { waitFor } from "../xmpp/helpers.js";

const DOMAIN = "iot.test";
const DEVICE = "dev-sql";
const PASS = "sql-device-pass";
const OP_PASS = "sql-operator-pass";
const PROBE_PASS = "sql-probe-pass";
const NODE = `devices/${DEVICE}/telemetry`;

/** Values in fleet.yml that the tests observe. */
const FLEET = {
  maxStanzaSize: 65536,
  backlog: 1024,
  rate: 50000,
  burst: 131072,
  resumeTimeout: 300,
  maxResumeTimeout: 600,
  maxAckQueue: 5000,
  maxItemsNode: 256,
  defaultMaxItems: 32,
  maxNodesDiscoitems: 100,
};

const skip = !ejabberdInstalled()
  ? "ejabberd is not installed (scripts/setup installs it)"
  : !postgresInstalled()
    ? "PostgreSQL 15 is not installed (scripts/setup installs postgresql-15)"
    : false;

/**
 * A bare client on this project's own XMPP code, for what slixmpp does not show (SM's `max`).
 * `sm`: false, or the resumption time to ask for (0 asks for none in particular).
 */
async function rawLogin(
  server: EjabberdHandle,
  user: string,
  password: string,
  sm: false | number = false,
): Promise<{ conn: Connection; jid: string; smMax: number | undefined; smResume: boolean }> {
  const socket = await connectTcp({ host: server.host, port: server.port }, 5000);
  const conn = new Connection(socket, DOMAIN, { maxStanzaBytes: 1 << 20, maxDepth: 64, ceilingBytes: 4 << 20 });
  const result = await negotiate(conn, {
    username: user,
    password,
    resource: `raw-${sm}`,
    tls: { servername: DOMAIN, ca: readFileSync(server.caFile, "utf8") },
    directTls: false,
    allowPlain: false,
    saslMechanisms: ["SCRAM-SHA-1"],
    saltedCache: new SaltedPasswordCache(),
    stepTimeoutMs: 10_000,
    sm: { enabled: sm !== false, resumeMaxSeconds: sm === false ? 0 : sm },
    log: silentLogger,
  });
  const outcome = result.sm;
  return {
    conn,
    jid: result.jid,
    smMax: outcome.kind === "enabled" ? outcome.max : undefined,
    smResume: outcome.kind === "enabled" && outcome.resume,
  };
}

/** A message to the sender's own full JID carrying `bytes` of body. */
function selfMessage(jid: string, id: string, bytes: number): string {
  return new Element("message", { to: jid, id, type: "chat" }).c("body").t("x".repeat(bytes)).root().toString();
}

/**
 * Sends `count` messages of `bytes` to itself; resolves with the ms from the first write until the
 * last came back. What the server reads from this client passes its c2s shaper.
 */
async function echoTime(conn: Connection, jid: string, count: number, bytes: number): Promise<number> {
  const seen = new Set<string>();
  conn.setHandler((el) => {
    if (el.is("message") && el.attrs.id?.startsWith("echo-")) seen.add(el.attrs.id);
  });
  const t0 = Date.now();
  for (let i = 0; i < count; i++) conn.writeRaw(selfMessage(jid, `echo-${i}`, bytes));
  await waitFor(() => seen.size === count, 30_000, `${count} messages back`);
  return Date.now() - t0;
}

describe("ejabberd 23.01 on PostgreSQL with the shipped fleet.yml", { skip }, () => {
  let pg: PostgresHandle;
  let sql: EjabberdSqlOptions;
  let server: EjabberdHandle;
  let dir: TempDir;
  let agent: Agent | undefined;
  let op: OperatorClient;
  const itemsSeen = new Set<string>();
  let lastSeen = "";
  const options = (): EjabberdOptions => ({
    ...ejabberdFleetConfig(),
    sql,
    domain: DOMAIN,
    admins: [`operator@${DOMAIN}`],
    nodeCreators: "local",
  });
  const query = async (text: string): Promise<string[]> =>
    (await pg.psql(sql.database, { text, tuples: true })).split("\n").filter((l) => l !== "");

  before(async () => {
    dir = makeTempDir("ejabberd-sql-");
    const t0 = Date.now();
    pg = await startPostgres();
    const t1 = Date.now();
    sql = await createEjabberdDatabase(pg, "ejabberd", "new");
    const t2 = Date.now();
    server = await startEjabberd(options());
    const t3 = Date.now();
    await Promise.all([
      server.register(DEVICE, PASS),
      server.register("operator", OP_PASS),
      server.register("probe", PROBE_PASS),
    ]);
    console.log(
      `# start-up: PostgreSQL ${t1 - t0} ms, database + pg.new.sql ${t2 - t1} ms, ejabberd ${t3 - t2} ms, 3 accounts ${Date.now() - t3} ms`,
    );
  });

  after(async () => {
    await op?.stop();
    await agent?.stop();
    await server?.stop();
    await pg?.stop();
    dir?.remove();
  });

  it("includes fleet.yml verbatim and keeps accounts registered with ejabberdctl in PostgreSQL", async () => {
    const config = readFileSync(server.configFile, "utf8");
    assert.match(config, new RegExp(`include_config_file:\\n  - ${JSON.stringify(EJABBERD_FLEET_CONFIG)}\\n`));
    assert.doesNotMatch(config, /auth_method/, "accounts follow default_db: sql");
    const users = await query(`select username from users where server_host = '${DOMAIN}' order by username`);
    assert.deepEqual(users, [DEVICE, "operator", "probe"]);
    // auth_password_format: scram, in SQL too: no plain password stored.
    const [stored] = await query(
      `select password <> '${PASS}' and serverkey <> '' from users where username = '${DEVICE}'`,
    );
    assert.equal(stored, "t");
  });

  it("the c2s listener has the fleet's TCP backlog (FLEET_C2S_BACKLOG, not ejabberd's 5)", async () => {
    // For a listening socket, ss shows the backlog in Send-Q.
    const { stdout } = await runCommand("ss", ["-ltnH", `sport = :${server.port}`], { timeoutMs: 5000 });
    const cols = stdout.trim().split(/\s+/);
    assert.equal(cols[0], "LISTEN", stdout);
    assert.equal(Number(cols[2]), FLEET.backlog, stdout);
  });

  it("stream management: <enabled max=...> follows resume_timeout and max_resume_timeout", async () => {
    const cases = [
      { ask: 600, want: FLEET.maxResumeTimeout }, // the agent's default request
      { ask: 120, want: 120 },
      { ask: 900, want: FLEET.resumeTimeout }, // above max_resume_timeout: the default instead
      { ask: 0, want: FLEET.resumeTimeout }, // no max asked
    ];
    for (const c of cases) {
      const raw = await rawLogin(server, "probe", PROBE_PASS, c.ask);
      raw.conn.close();
      assert.equal(raw.smResume, true);
      assert.equal(raw.smMax, c.want, `asked ${c.ask} s`);
    }
  });

  it("stream management: a session that leaves more than max_ack_queue stanzas unacknowledged is closed", async () => {
    // The admin account, so the shaper does not slow the 5,000 writes; it never answers <r/>.
    const raw = await rawLogin(server, "operator", OP_PASS, 0);
    let received = 0;
    raw.conn.setHandler((el) => {
      if (el.is("message")) received++;
    });
    const closed = new Promise<AgentError | undefined>((resolve) => raw.conn.once("close", resolve));
    for (let i = 0; i < FLEET.maxAckQueue + 100; i++) raw.conn.writeRaw(selfMessage(raw.jid, `q-${i}`, 10));
    const err = await closed;
    assert.equal(err?.context.condition, "policy-violation", err?.message);
    assert.match(String(err?.context.text), /Too many unacked stanzas/);
    console.log(`# max_ack_queue ${FLEET.maxAckQueue}: ${received} messages unacknowledged, then policy-violation`);
    assert.ok(received >= FLEET.maxAckQueue, `${received} messages arrived before the close`);
  });

  it("max_stanza_size: a 60 KB stanza passes, a 70 KB one closes the sender's stream (policy-violation)", async () => {
    const raw = await rawLogin(server, "probe", PROBE_PASS);
    try {
      assert.ok((await echoTime(raw.conn, raw.jid, 1, 60_000)) < 10_000);
      const closed = new Promise<AgentError | undefined>((resolve) => raw.conn.once("close", resolve));
      raw.conn.writeRaw(selfMessage(raw.jid, "too-big", FLEET.maxStanzaSize + 4000));
      const err = await closed;
      assert.equal(err?.context.condition, "policy-violation", err?.message);
    } finally {
      raw.conn.close();
    }
  });

  it("shaper: a device account is read at fleet_device's rate after its burst; an admin is not shaped", async () => {
    const count = 20;
    const bytes = 15_000;
    const device = await rawLogin(server, DEVICE, PASS);
    const admin = await rawLogin(server, "operator", OP_PASS);
    try {
      const deviceMs = await echoTime(device.conn, device.jid, count, bytes);
      const adminMs = await echoTime(admin.conn, admin.jid, count, bytes);
      // Token bucket: full at burst_size, refilled at rate; only what exceeds the burst waits. The
      // pause for a read comes before the next read, so the last read is not waited for: 80 % of it.
      const floorMs = ((count * bytes - FLEET.burst) / FLEET.rate) * 1000;
      console.log(
        `# ${count} x ${bytes} B to itself: device ${deviceMs} ms (shaper floor ${floorMs.toFixed(0)} ms), admin ${adminMs} ms`,
      );
      assert.ok(deviceMs >= floorMs * 0.8, `device took ${deviceMs} ms, faster than the shaper allows`);
      assert.ok(adminMs < deviceMs / 2, `admin took ${adminMs} ms against the device's ${deviceMs} ms`);
    } finally {
      device.conn.close();
      admin.conn.close();
    }
  });

  it("the agent publishes through pubsub.iot.test: the operator receives the items and they are in pubsub_item", async () => {
    const { agent: a } = await startComposedAgent({
      dir: dir.path,
      config: `${agentConfigHead({ id: DEVICE, dataDir: `${dir.path}/${DEVICE}`, port: server.port, caFile: server.caFile })}${simTemperatureBoard(100)}telemetry:\n  batch: { maxReadings: 5, maxAgeMs: 500 }\n`,
      password: PASS,
    });
    agent = a;
    op = await OperatorClient.login(server, "operator", OP_PASS, { name: "sql-operator" });
    // The agent creates its node before its first publish; subscribe once it is there.
    let subscribed = false;
    const deadline = Date.now() + 15_000;
    while (!subscribed) {
      try {
        await op.subscribe(server.pubsubJid, NODE);
        subscribed = true;
      } catch (err) {
        if (!(err instanceof OperatorError) || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const ev = await op.waitForPubsub((p) => p.kind === "item" && p.node === NODE && p.payload !== null, 15_000);
    const readings = decodeReadings(parse(ev.payload!)).readings;
    assert.ok(readings.length > 0);
    assert.ok(ev.id);
    await waitFor(() => op.pubsubItems().filter((p) => p.node === NODE).length >= 3, 15_000, "three items");
    for (const p of op.pubsubItems()) if (p.node === NODE && p.id) itemsSeen.add(p.id);
    // Every item the operator received is a row of pubsub_item, payload and all.
    const rows = await query(
      `select i.itemid from pubsub_item i join pubsub_node n on n.nodeid = i.nodeid where n.host = '${server.pubsubJid}' and n.node = '${NODE}'`,
    );
    for (const id of itemsSeen) assert.ok(rows.includes(id), `item ${id} not in pubsub_item (${rows.length} rows)`);
    const [payload] = await query(`select payload from pubsub_item where itemid = '${ev.id}'`);
    assert.match(payload ?? "", /^<readings xmlns=['"]urn:xmpp-iot-agent:telemetry:0['"]/);
    // The agent asked for max_items 32 (its default), under max_items_node.
    const [maxItems] = await query(
      `select o.val from pubsub_node_option o join pubsub_node n on n.nodeid = o.nodeid where n.node = '${NODE}' and o.name = 'max_items'`,
    );
    assert.equal(maxItems, "32");
    lastSeen = ev.id;
    for (const p of op.pubsubItems()) if (p.node === NODE && p.id) lastSeen = p.id;
  });

  it("pubsub limits: max_items over max_items_node refused, default_node_config's max_items, disco#items capped", async () => {
    await assert.rejects(
      op.pubsubCreate(server.pubsubJid, "limits/too-many", { "pubsub#max_items": FLEET.maxItemsNode + 1 }),
      (err: unknown) => err instanceof OperatorError && err.condition === "resource-constraint",
    );
    await op.pubsubCreate(server.pubsubJid, "limits/at-most", { "pubsub#max_items": FLEET.maxItemsNode });
    await op.pubsubCreate(server.pubsubJid, "limits/plain");
    const form = await op.iq(
      server.pubsubJid,
      "get",
      `<pubsub xmlns="http://jabber.org/protocol/pubsub#owner"><configure node="limits/plain"/></pubsub>`,
    );
    const field = /<field[^>]*var="pubsub#max_items"[^>]*>.*?<value>(\d+)<\/value>/s.exec(form.xml);
    assert.equal(field?.[1], String(FLEET.defaultMaxItems), form.xml);
    // Many device nodes, straight into the nodetree table: the service lists at most 100.
    await query(
      `insert into pubsub_node (host, node, parent, plugin) select '${server.pubsubJid}', 'bulk/' || g, '', 'flat' from generate_series(1, 150) g`,
    );
    const [total] = await query(`select count(*) from pubsub_node where host = '${server.pubsubJid}'`);
    assert.ok(Number(total) > FLEET.maxNodesDiscoitems);
    const items = await op.discoItems(server.pubsubJid);
    assert.equal(items.items.length, FLEET.maxNodesDiscoitems);
  });

  it("a restarted ejabberd with a fresh Mnesia on the same database has the accounts, the node and its items", async () => {
    assert.ok(lastSeen !== "", "the publish test ran first");
    await agent?.stop();
    agent = undefined;
    await op.stop();
    await server.stop();
    // Nothing can write to the node now (the agent's last publish may land after its stop()).
    const itemsBefore = await query(
      `select i.itemid from pubsub_item i join pubsub_node n on n.nodeid = i.nodeid where n.node = '${NODE}' order by 1`,
    );
    assert.ok(itemsBefore.includes(lastSeen));
    const t0 = Date.now();
    server = await startEjabberd(options());
    console.log(`# restart: new ejabberd instance (new spool dir) up in ${Date.now() - t0} ms`);
    // The login itself is the account check: this instance's Mnesia has never seen it.
    op = await OperatorClient.login(server, "operator", OP_PASS, { name: "sql-operator-2" });
    const { items } = await op.getItems(server.pubsubJid, NODE);
    const ids = items.map((i) => i.id ?? "").sort();
    assert.deepEqual(ids, itemsBefore);
    assert.ok(ids.includes(lastSeen), `the last item the operator saw (${lastSeen}) is gone`);
    assert.ok(items.every((i) => (i.payload ?? "").includes("<readings")));
    // The device logs in again too; ejabberd names the backend that checked both passwords.
    const raw = await rawLogin(server, DEVICE, PASS);
    raw.conn.close();
    const log = (): string => readFileSync(server.logFile, "utf8");
    for (const user of ["operator", DEVICE])
      await waitFor(
        () => log().includes(`authentication for ${user}@${DOMAIN} by sql backend`),
        5000,
        `${user}: sql auth`,
      );
  });

  it("ejabberd 23.01 refuses at start what it does not know: a `nagle` listener option, a module in both files", async () => {
    const cases: Array<[EjabberdOptions, RegExp]> = [
      [{ ...ejabberdFleetConfig(), c2sOptions: { nagle: false } }, /Unknown option: nagle/],
      [{ ...ejabberdFleetConfig(), extraModulesYaml: "  mod_ping: {}\n" }, /Duplicated option: mod_ping/],
    ];
    for (const [opts, why] of cases) {
      await assert.rejects(startEjabberd(opts), (err: Error) => {
        assert.match(err.message, why);
        return true;
      });
    }
  });

  it("the old schema works too (pg.sql, new_sql_schema: false): ejabberdctl register lands in its users table", async () => {
    const old = await createEjabberdDatabase(pg, "ejabberd_old", "old");
    const oldServer = await startEjabberd({ sql: old });
    try {
      assert.match(
        readFileSync(join(dirname(oldServer.configFile), "sql-postgresql.yml"), "utf8"),
        /^new_sql_schema: false$/m,
      );
      await oldServer.register("old-schema", "pw-old");
      const users = await pg.psql("ejabberd_old", { text: "select username from users", tuples: true });
      assert.equal(users.trim(), "old-schema");
    } finally {
      await oldServer.stop();
    }
  });
});
