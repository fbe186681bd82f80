/**
 * Prosody 0.12 as a fleet runs it: the shipped deploy/servers/prosody/fleet.cfg.lua included
 * verbatim and every store in SQL, once in PostgreSQL 15 and once in SQLite, each through the
 * shipped storage file with its placeholders filled in. The tests show that accounts made with
 * prosodyctl and the agent's pubsub items land in SQL (nothing in file storage), that they survive
 * a restart on the same database, and every fleet setting a client can observe.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Element, parse } from "ltx";
import type { Agent } from "../../agent/main.js";
import { decodeReadings } from "../../agent/telemetry/codec.js";
import { AgentError } from "../../kernel/errors.js";
import { silentLogger } from "../../kernel/log.js";
import { Connection } from "../../xmpp/connection.js";
import { negotiate } from "../../xmpp/negotiate.js";
import { SaltedPasswordCache } from "../../xmpp/sasl/index.js";
import { connectTcp } from "../../xmpp/transport.js";
import { agentConfigHead, simTemperatureBoard, startComposedAgent } from "../harness/composed-agent.js";
import { OperatorClient, OperatorError } from "../harness/operator.js";
import { type PostgresHandle, postgresInstalled, startPostgres } from "../harness/postgres.js";
import { runCommand } from "../harness/process.js";
import {
  PROSODY_FLEET_CONFIG,
  PROSODY_STORAGE_CONFIGS,
  type ProsodyHandle,
  type ProsodyOptions,
  type ProsodySqlStorage,
  prosodySqlDriverInstalled,
  startProsody,
} from "../harness/prosody.js";
import { makeTempDir, type TempDir } from "../harness/tmp.js";
import { waitFor } from "../xmpp/helpers.js";

const DOMAIN = "iot.test";
const PUBSUB = `pubsub.${DOMAIN}`;
const DEVICE = "dev-sql";
const PASS = "sql-device-pass";
const OP_PASS = "sql-operator-pass";
const PROBE_PASS = "sql-probe-pass";
const NODE = `devices/${DEVICE}/telemetry`;

/** Values in fleet.cfg.lua that the tests observe (checked against the file below). */
const FLEET = {
  smacksHibernationTime: 600,
  smacksMaxQueueSize: 250,
  smacksMaxUnackedStanzas: 10,
  pubsubMaxItems: 256,
  rate: 50_000, // "50kb/s": mod_limits counts k as 10^3
  stanzaSizeLimit: 65536,
  tcpBacklog: 1024,
};

it("fleet.cfg.lua holds the values these tests check", () => {
  const text = readFileSync(PROSODY_FLEET_CONFIG, "utf8");
  const expect = [
    `smacks_hibernation_time = ${FLEET.smacksHibernationTime}`,
    `smacks_max_queue_size = ${FLEET.smacksMaxQueueSize}`,
    `smacks_max_unacked_stanzas = ${FLEET.smacksMaxUnackedStanzas}`,
    `pubsub_max_items = ${FLEET.pubsubMaxItems}`,
    `c2s = { rate = "${FLEET.rate / 1000}kb/s" }`,
    `c2s_stanza_size_limit = ${FLEET.stanzaSizeLimit}`,
    `tcp_backlog = ${FLEET.tcpBacklog};`,
    "nagle = false;",
  ];
  for (const line of expect) assert.ok(text.includes(line), `fleet.cfg.lua has no "${line}"`);
});

/** Sets `key = value` inside the shipped storage file's sql table; the key must be there. */
function setSqlField(text: string, key: string, value: string | number): string {
  const re = new RegExp(`^(\\s*${key}\\s*=\\s*)("[^"]*"|\\d+)`, "m");
  assert.match(text, re, `the shipped storage file has no ${key}`);
  return text.replace(re, `$1${typeof value === "number" ? value : JSON.stringify(value)}`);
}

/** One SQL database Prosody keeps its data in, and a way to look into it. */
interface Backend {
  storage: ProsodySqlStorage;
  /** The shipped storage file with its placeholders filled in, written to the test's dir. */
  configFile: string;
  /** Rows as arrays of strings (NULL as ""). Keep to single-line values. */
  query(sql: string): Promise<string[][]>;
  stop(): Promise<void>;
}

async function postgresBackend(dir: string): Promise<Backend> {
  const pg: PostgresHandle = await startPostgres();
  // As docs/servers.md says: a role of its own (no superuser) owning the database; Prosody creates
  // its tables itself.
  const role = { username: "prosody", password: "prosody-sql-test-secret" };
  await pg.psql("postgres", { text: `CREATE ROLE prosody LOGIN PASSWORD '${role.password}'` });
  await pg.psql("postgres", { text: "CREATE DATABASE prosody OWNER prosody" });
  const storage: ProsodySqlStorage = {
    driver: "PostgreSQL",
    host: pg.host,
    port: pg.port,
    database: "prosody",
    ...role,
  };
  let text = readFileSync(PROSODY_STORAGE_CONFIGS.PostgreSQL, "utf8");
  assert.match(text, /^\s*password = "CHANGE-ME";/m, "the password placeholder is marked");
  for (const key of ["database", "username", "password", "host"] as const) text = setSqlField(text, key, storage[key]);
  text = setSqlField(text, "port", storage.port);
  assert.doesNotMatch(text, /"CHANGE-ME"/);
  const configFile = join(dir, "storage-postgresql.cfg.lua");
  writeFileSync(configFile, text);
  return {
    storage,
    configFile,
    async query(sql) {
      const out = await pg.psql("prosody", { text: sql, tuples: true });
      return out
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => l.split("|"));
    },
    stop: () => pg.stop(),
  };
}

// immutable=1: the reader takes no lock. A reader's shared lock can make one of Prosody's writes
// fail with "database is locked" (see the account creation below), and the agent publishes while the tests read. A read
// that meets a half-written page fails and is tried again.
const SQLITE_QUERY = `
import json, sqlite3, sys, time
for attempt in range(5):
    try:
        db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro&immutable=1", uri=True)
        rows = [["" if v is None else str(v) for v in row] for row in db.execute(sys.argv[2])]
        break
    except sqlite3.DatabaseError:
        if attempt == 4: raise
        time.sleep(0.1)
for row in rows:
    print(json.dumps(row))
`;

async function sqliteBackend(dir: string): Promise<Backend> {
  // Outside Prosody's data_path, which the harness removes at stop(): the restart needs the file.
  const database = join(dir, "prosody.sqlite");
  let text = readFileSync(PROSODY_STORAGE_CONFIGS.SQLite3, "utf8");
  assert.match(text, /^\s*database = "prosody\.sqlite";/m);
  text = setSqlField(text, "database", database);
  const configFile = join(dir, "storage-sqlite.cfg.lua");
  writeFileSync(configFile, text);
  return {
    storage: { driver: "SQLite3", database },
    configFile,
    async query(sql) {
      // The system python (as the operator uses): its sqlite3 module is part of the standard library.
      const { stdout } = await runCommand("/usr/bin/python3", ["-c", SQLITE_QUERY, database, sql], {
        timeoutMs: 15_000,
      });
      return stdout
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l) as string[]);
    },
    stop: async () => undefined,
  };
}

/**
 * A bare client on this project's own XMPP code, for what slixmpp does not show (SM's `max`, <r/>,
 * resumption). `sm`: false, or the resumption time to ask for. `resume`: a session to resume.
 */
async function rawLogin(
  server: ProsodyHandle,
  user: string,
  password: string,
  sm: false | number = false,
  resume?: { id: string; h: number },
): Promise<{
  conn: Connection;
  jid: string;
  smId: string | undefined;
  smMax: number | undefined;
  resumed: boolean;
  resumeFailed: boolean;
}> {
  const socket = await connectTcp({ host: server.host, port: server.port }, 5000);
  const conn = new Connection(socket, DOMAIN, { maxStanzaBytes: 1 << 20, maxDepth: 64, ceilingBytes: 4 << 20 });
  const result = await negotiate(conn, {
    username: user,
    password,
    resource: `raw-${Math.random().toString(36).slice(2, 8)}`,
    tls: { servername: DOMAIN, ca: readFileSync(server.caFile!, "utf8") },
    directTls: false,
    allowPlain: false,
    saslMechanisms: ["SCRAM-SHA-1"],
    saltedCache: new SaltedPasswordCache(),
    stepTimeoutMs: 10_000,
    sm: { enabled: sm !== false, resumeMaxSeconds: sm === false ? 0 : sm },
    ...(resume ? { resume } : {}),
    log: silentLogger,
  });
  const outcome = result.sm;
  return {
    conn,
    jid: result.jid,
    smId: outcome.kind === "enabled" ? outcome.id : undefined,
    smMax: outcome.kind === "enabled" ? outcome.max : undefined,
    resumed: outcome.kind === "resumed",
    resumeFailed: result.resumeFailed !== undefined,
  };
}

/** A message to the sender's own full JID carrying `bytes` of body. */
function selfMessage(jid: string, id: string, bytes: number): string {
  return new Element("message", { to: jid, id, type: "chat" }).c("body").t("x".repeat(bytes)).root().toString();
}

/** `p`, or a rejection naming `what` after `ms`. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Counts what comes back on a raw connection: messages by id prefix, and SM <r/> requests. */
function track(conn: Connection): { messages: Set<string>; requests: () => number } {
  const messages = new Set<string>();
  let requests = 0;
  conn.setHandler((el) => {
    if (el.is("message") && el.attrs.id) messages.add(el.attrs.id);
    else if (el.is("r", "urn:xmpp:sm:3")) requests++;
  });
  return { messages, requests: () => requests };
}

/**
 * Sends `count` messages of `bytes` to itself; resolves with the ms from the first write until the
 * last came back. What the server reads from this client passes mod_limits.
 */
async function echoTime(conn: Connection, jid: string, count: number, bytes: number): Promise<number> {
  const { messages } = track(conn);
  const t0 = Date.now();
  for (let i = 0; i < count; i++) conn.writeRaw(selfMessage(jid, `echo-${i}`, bytes));
  await waitFor(() => messages.size === count, 30_000, `${count} messages back`);
  return Date.now() - t0;
}

const configurations = [
  {
    name: "PostgreSQL 15",
    driver: "PostgreSQL" as const,
    open: postgresBackend,
    skip: !prosodySqlDriverInstalled("PostgreSQL")
      ? "Prosody's Lua cannot load dbd.postgresql (apt-get install lua-dbi-postgresql)"
      : !postgresInstalled()
        ? "PostgreSQL 15 is not installed (apt-get install postgresql-15)"
        : false,
  },
  {
    name: "SQLite",
    driver: "SQLite3" as const,
    open: sqliteBackend,
    skip: !prosodySqlDriverInstalled("SQLite3")
      ? "Prosody's Lua cannot load dbd.sqlite3 (apt-get install lua-dbi-sqlite3)"
      : false,
  },
];

for (const c of configurations) {
  describe(`Prosody 0.12 on ${c.name} with the shipped fleet.cfg.lua`, { skip: c.skip }, () => {
    let dir: TempDir;
    let db: Backend;
    let server: ProsodyHandle;
    let agent: Agent | undefined;
    let op: OperatorClient;
    let lastSeen = "";
    const options = (storage: "shipped file" | "harness option"): ProsodyOptions => ({
      domain: DOMAIN,
      // The shipped files, as an admin installs them; the restart renders the same database with the
      // harness's own `storage` option instead.
      include: storage === "shipped file" ? [PROSODY_FLEET_CONFIG, db.configFile] : [PROSODY_FLEET_CONFIG],
      ...(storage === "harness option" ? { storage: db.storage } : {}),
      // fleet.cfg.lua needs smacks (in the harness's modules) and limits, as Debian's config has.
      extraModules: ["limits"],
      // The device creates its nodes on the component; the operator creates the limit tests' nodes.
      pubsubAdmins: [`${DEVICE}@${DOMAIN}`, `operator@${DOMAIN}`],
      // fleet.cfg.lua leaves unlimited_jids for the admin to fill in: here, the operator.
      extraGlobalLua: `unlimited_jids = { "operator@${DOMAIN}" }`,
    });
    const itemIds = async (): Promise<string[]> =>
      (
        await db.query(
          `select "key" from prosodyarchive where host = '${PUBSUB}' and store = 'pubsub_${NODE}' order by sort_id`,
        )
      ).map((r) => r[0]!);

    before(async () => {
      dir = makeTempDir("prosody-sql-");
      const t0 = Date.now();
      db = await c.open(dir.path);
      const t1 = Date.now();
      server = await startProsody(options("shipped file"));
      const t2 = Date.now();
      // One after the other: on SQLite, concurrent prosodyctl processes fail with "database is
      // locked" (LuaDBI's SQLite driver sets no busy timeout, so a writer that meets another's lock
      // fails at once).
      await server.register(DEVICE, PASS);
      await server.register("operator", OP_PASS);
      await server.register("probe", PROBE_PASS);
      console.log(
        `# start-up on ${c.name}: database ${t1 - t0} ms, Prosody ${t2 - t1} ms, 3 accounts (prosodyctl) ${Date.now() - t2} ms`,
      );
    });

    after(async () => {
      await op?.stop();
      await agent?.stop();
      await server?.stop();
      await db?.stop();
      dir?.remove();
    });

    it("includes fleet.cfg.lua and the storage file; prosodyctl's accounts are in SQL, not in files", async () => {
      const config = readFileSync(server.configFile, "utf8");
      assert.ok(config.includes(`Include ${JSON.stringify(PROSODY_FLEET_CONFIG)}`));
      assert.ok(config.includes(`Include ${JSON.stringify(db.configFile)}`));
      const rows = await db.query(
        `select "user", "key" from prosody where host = '${DOMAIN}' and store = 'accounts' order by 1, 2`,
      );
      assert.deepEqual([...new Set(rows.map((r) => r[0]))], [DEVICE, "operator", "probe"]);
      // internal_hashed in SQL too: SCRAM keys, no password.
      const keys = rows.filter((r) => r[0] === DEVICE).map((r) => r[1]);
      assert.deepEqual(keys, ["iteration_count", "salt", "server_key", "stored_key"]);
      // File storage would have made <data_path>/iot%2etest/accounts/.
      assert.deepEqual(
        readdirSync(server.dataDir).filter((f) => f.includes("%2e")),
        [],
        "nothing in Prosody's file storage",
      );
    });

    it("stream management: <enabled max> is smacks_hibernation_time whatever the client asks", async () => {
      for (const ask of [600, 120, 0]) {
        const raw = await rawLogin(server, "probe", PROBE_PASS, ask);
        raw.conn.close();
        assert.ok(raw.smId, "resumption offered");
        assert.equal(raw.smMax, FLEET.smacksHibernationTime, `asked for ${ask} s`);
      }
    });

    it("stream management: <r/> only past smacks_max_unacked_stanzas; a queue past smacks_max_queue_size cannot be resumed", async () => {
      // The operator is in unlimited_jids: mod_limits does not slow these writes.
      const raw = await rawLogin(server, "operator", OP_PASS, 600);
      const seen = track(raw.conn);
      const few = FLEET.smacksMaxUnackedStanzas;
      for (let i = 0; i < few; i++) raw.conn.writeRaw(selfMessage(raw.jid, `few-${i}`, 10));
      await waitFor(() => seen.messages.size === few, 10_000, `${few} messages back`);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(seen.requests(), 0, `an <r/> after only ${few} unacknowledged stanzas`);
      raw.conn.writeRaw(selfMessage(raw.jid, "one-more", 10));
      await waitFor(() => seen.requests() > 0, 5000, "an <r/> past smacks_max_unacked_stanzas");
      // Never acknowledged: fill the queue past its size, drop the link (no </stream>), resume.
      const total = FLEET.smacksMaxQueueSize + 20;
      for (let i = few + 1; i < total; i++) raw.conn.writeRaw(selfMessage(raw.jid, `fill-${i}`, 10));
      await waitFor(() => seen.messages.size === total, 10_000, `${total} messages back`);
      raw.conn.destroy(new AgentError("test_drop", "link dropped by the test"));
      // Prosody 0.12.3 refuses the resumption (its log: "Too many unacked stanzas remaining,
      // session can't be resumed") but writes its <failed/> and stream error to the old, dead link:
      // the client sees its connection closed without an answer. The session is gone: the next
      // attempt gets <failed/> and binds anew.
      await assert.rejects(rawLogin(server, "operator", OP_PASS, 600, { id: raw.smId!, h: 0 }), /closed by peer/);
      await waitFor(
        () =>
          readFileSync(server.logFile, "utf8").includes("Too many unacked stanzas remaining, session can't be resumed"),
        5000,
        "Prosody's overflow message in its log",
      );
      const again = await rawLogin(server, "operator", OP_PASS, 600, { id: raw.smId!, h: 0 });
      again.conn.close();
      assert.equal(again.resumed, false, `${total} unacknowledged stanzas resumed`);
      assert.ok(again.resumeFailed);
      assert.ok(again.smId, "bound and SM enabled anew");
      // The same with fewer than smacks_max_queue_size: resumed.
      const small = await rawLogin(server, "operator", OP_PASS, 600);
      const smallSeen = track(small.conn);
      for (let i = 0; i < 20; i++) small.conn.writeRaw(selfMessage(small.jid, `small-${i}`, 10));
      await waitFor(() => smallSeen.messages.size === 20, 10_000, "20 messages back");
      small.conn.destroy(new AgentError("test_drop", "link dropped by the test"));
      const resumed = await rawLogin(server, "operator", OP_PASS, 600, { id: small.smId!, h: 0 });
      const resent = track(resumed.conn);
      await waitFor(() => resent.messages.size === 20, 10_000, "the 20 unacknowledged messages again");
      resumed.conn.close();
      assert.equal(resumed.resumed, true);
    });

    it("c2s_stanza_size_limit: a 60 KB stanza passes, a 90 KB one closes the sender's stream (policy-violation)", async () => {
      const raw = await rawLogin(server, "operator", OP_PASS);
      try {
        await echoTime(raw.conn, raw.jid, 1, 60_000);
        const closed = new Promise<AgentError | undefined>((resolve) => raw.conn.once("close", resolve));
        // Prosody compares the bytes of an unfinished stanza with the limit after each read (up to
        // 8 KiB): a stanza that ends within the read that crosses the limit passes (65,536 + 4,000
        // did). 24 KB over is three reads over.
        raw.conn.writeRaw(selfMessage(raw.jid, "too-big", FLEET.stanzaSizeLimit + 24_000));
        const err = await within(closed, 10_000, "the stream to close");
        assert.equal(err?.context.condition, "policy-violation", err?.message);
      } finally {
        raw.conn.close();
      }
    });

    it("mod_limits: a device account is read at limits.c2s.rate; an account in unlimited_jids is not", async () => {
      const count = 10;
      const bytes = 15_000;
      const device = await rawLogin(server, "probe", PROBE_PASS);
      const admin = await rawLogin(server, "operator", OP_PASS);
      try {
        const deviceMs = await echoTime(device.conn, device.jid, count, bytes);
        const adminMs = await echoTime(admin.conn, admin.jid, count, bytes);
        // No burst on epoll: after each read (at most 8 KiB) Prosody pauses for bytes / rate, so all
        // but the last read are waited for.
        const floorMs = ((count * bytes - 8192) / FLEET.rate) * 1000;
        console.log(
          `# ${count} x ${bytes} B to itself: device ${deviceMs} ms (floor ${floorMs.toFixed(0)} ms), unlimited ${adminMs} ms`,
        );
        assert.ok(deviceMs >= floorMs * 0.9, `device took ${deviceMs} ms, faster than the limit allows`);
        assert.ok(adminMs < deviceMs / 2, `unlimited account took ${adminMs} ms against the device's ${deviceMs} ms`);
      } finally {
        device.conn.close();
        admin.conn.close();
      }
    });

    it("network_settings: the c2s listener has tcp_backlog (1024, not Prosody's 128)", async () => {
      // For a listening socket, ss shows the backlog in Send-Q.
      const { stdout } = await runCommand("ss", ["-ltnH", `sport = :${server.port}`], { timeoutMs: 5000 });
      const cols = stdout.trim().split(/\s+/);
      assert.equal(cols[0], "LISTEN", stdout);
      assert.equal(Number(cols[2]), FLEET.tcpBacklog, stdout);
    });

    it("the agent publishes through pubsub.iot.test: the operator receives the items, and they are SQL rows", async () => {
      const { agent: a } = await startComposedAgent({
        dir: dir.path,
        config: `${agentConfigHead({ id: DEVICE, dataDir: join(dir.path, DEVICE), port: server.port, caFile: server.caFile })}${simTemperatureBoard(100)}telemetry:\n  batch: { maxReadings: 5, maxAgeMs: 500 }\n`,
        password: PASS,
      });
      agent = a;
      op = await OperatorClient.login(server, "operator", OP_PASS, { name: "prosody-sql-operator" });
      // The agent creates its node before its first publish; subscribe once it is there.
      const deadline = Date.now() + 15_000;
      for (;;) {
        try {
          await op.subscribe(PUBSUB, NODE);
          break;
        } catch (err) {
          if (!(err instanceof OperatorError) || Date.now() > deadline) throw err;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      const ev = await op.waitForPubsub((p) => p.kind === "item" && p.node === NODE && p.payload !== null, 15_000);
      const readings = decodeReadings(parse(ev.payload!)).readings;
      assert.ok(readings.length > 0);
      console.log(
        `# one item: ${readings.length} readings in ${Buffer.byteLength(ev.payload!)} bytes of payload (~${Math.round(Buffer.byteLength(ev.payload!) / readings.length)} B per reading)`,
      );
      await waitFor(() => op.pubsubItems().filter((p) => p.node === NODE).length >= 3, 15_000, "three items");
      const seen = op.pubsubItems().flatMap((p) => (p.node === NODE && p.id ? [p.id] : []));
      // Every item the operator received is a row of prosodyarchive (store pubsub_<node>).
      const ids = await itemIds();
      for (const id of seen) assert.ok(ids.includes(id), `item ${id} not in prosodyarchive (${ids.length} rows)`);
      const [payload] = await db.query(
        `select type, substr(value, 1, 200) from prosodyarchive where host = '${PUBSUB}' and store = 'pubsub_${NODE}' and "key" = '${ev.id}'`,
      );
      assert.equal(payload?.[0], "xml");
      assert.match(payload?.[1] ?? "", /^<readings [^>]*xmlns=['"]urn:xmpp-iot-agent:telemetry:0['"]/);
      // The node's configuration is in the prosody table (store pubsub_nodes, one row per field):
      // the agent's max_items (32, telemetry.publish.maxItems) under pubsub_max_items.
      const [config] = await db.query(
        `select value from prosody where host = '${PUBSUB}' and store = 'pubsub_nodes' and "user" = '${NODE}' and "key" = 'config'`,
      );
      assert.ok(config, "node config row");
      assert.equal(Number((JSON.parse(config[0]!) as { max_items: unknown }).max_items), 32);
      lastSeen = seen.at(-1)!;
    });

    it("pubsub_max_items: a node asking for more is refused; items beyond a node's max_items leave SQL", async () => {
      await assert.rejects(
        op.pubsubCreate(PUBSUB, "limits/too-many", { "pubsub#max_items": FLEET.pubsubMaxItems + 1 }),
        (err: unknown) => {
          assert.ok(err instanceof OperatorError, String(err));
          assert.equal(err.condition, "bad-request", err.message);
          return true;
        },
      );
      await op.pubsubCreate(PUBSUB, "limits/at-most", { "pubsub#max_items": FLEET.pubsubMaxItems });
      await op.pubsubCreate(PUBSUB, "limits/three", { "pubsub#max_items": 3 });
      for (let i = 0; i < 5; i++)
        await op.publish(PUBSUB, "limits/three", `<n xmlns="urn:test">${i}</n>`, { itemId: `i${i}` });
      const rows = await db.query(
        `select "key" from prosodyarchive where host = '${PUBSUB}' and store = 'pubsub_limits/three' order by sort_id`,
      );
      assert.deepEqual(
        rows.map((r) => r[0]),
        ["i2", "i3", "i4"],
      );
    });

    it("a Prosody restarted on the same database (storage through the harness option) has the accounts, node and items", async () => {
      assert.ok(lastSeen !== "", "the publish test ran first");
      await agent?.stop();
      agent = undefined;
      await op.stop();
      await server.stop();
      // Nothing writes to the node now (the agent's last publish may land after its stop()).
      const before = await itemIds();
      assert.ok(before.includes(lastSeen));
      const t0 = Date.now();
      server = await startProsody(options("harness option"));
      const config = readFileSync(server.configFile, "utf8");
      assert.match(config, /^storage = "sql"$/m);
      assert.ok(!config.includes(db.configFile));
      console.log(`# restart: new Prosody (new temp dir) on the same ${c.name} database up in ${Date.now() - t0} ms`);
      // The login is the account check: this instance's data_path is new and empty.
      op = await OperatorClient.login(server, "operator", OP_PASS, { name: "prosody-sql-operator-2" });
      const { items } = await op.getItems(PUBSUB, NODE);
      assert.deepEqual(items.map((i) => i.id ?? "").sort(), [...before].sort());
      assert.ok(items.every((i) => (i.payload ?? "").includes("<readings")));
      // The device logs in again too.
      const raw = await rawLogin(server, DEVICE, PASS);
      raw.conn.close();
      assert.equal(existsSync(join(server.dataDir, "iot%2etest")), false);
    });
  });
}
