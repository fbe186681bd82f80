/**
 * A two-node ejabberd 23.01 cluster on loopback (issue 15's "distributed engine"): two private
 * instances (test/harness/ejabberd.ts) with the same domain, certificate, Erlang cookie and
 * PostgreSQL database, joined with `ejabberdctl join_cluster` (run against node B, naming node A).
 *
 * How two nodes on one host reach each other without epmd. The single instance sets ERL_DIST_PORT,
 * and ejabberdctl then passes `-erl_epmd_port PORT -start_epmd false`: Erlang asks no epmd and
 * assumes every node listens on that one port, on the host in its node name. Two nodes on
 * 127.0.0.1 would need the same port twice. So each node gets its own loopback address and a long
 * node name on it: `ejabberd@127.0.0.2` and `ejabberd@127.0.0.3` (a dot in the host part makes
 * ejabberdctl use -name instead of -sname), both with the same ERL_DIST_PORT, distribution bound to
 * the node's address (inet_dist_use_interface). Node A dials 127.0.0.3:PORT to reach B and B dials
 * 127.0.0.2:PORT. The ejabberdctl client nodes are named `<uuid>-ctl-ejabberd@127.0.0.x` and do not
 * listen (-dist_listen false). Linux routes all of 127.0.0.0/8 to `lo`, so nothing is configured
 * and nothing listens outside loopback; there is no epmd process to start or to kill. The other
 * option, a private epmd on 127.0.0.1 (ERL_EPMD_ADDRESS, ERL_EPMD_PORT) shared by both nodes and
 * every ctl call, should work too but adds a process to track and kill; it was not needed (not tried).
 * Both nodes need the same cookie: each instance's HOME gets the cluster's random cookie.
 *
 * What the cluster shares: accounts, rosters, pubsub nodes and items are in PostgreSQL (the
 * shipped sql-postgresql.yml; the database is created once here); the session table, routes and
 * the cluster membership are in Mnesia (sm_db_type defaults to mnesia), replicated between the
 * nodes by the join. Measured on this 2-core machine: a node starts in ~1.5-2.4 s idle (both in
 * parallel), the join_cluster command takes ~0.8-0.9 s (node B restarts its ejabberd application,
 * its c2s port closes and opens again before the command returns); with the machine loaded (load
 * average 6-9) a start took 2.8-4.1 s and the join 2-3.7 s. Each ejabberdctl call boots an Erlang
 * node: ~0.3-0.5 s idle, over 1 s loaded.
 *
 * Crash and rejoin (measured on ejabberd 23.01 / OTP 25): a node killed with SIGKILL and started
 * again with the same node name and its own Mnesia dir rejoins by itself: Mnesia's schema lists the
 * other node, and Mnesia connects to it at start, so no join_cluster is needed (list_cluster on
 * both nodes shows both right when its c2s port opens). That is why each node's Mnesia dir lives in
 * the cluster's temp dir (startEjabberd's `dataDir`), not in the instance's own dir that stop()
 * removes. A node restarted on an empty Mnesia dir starts alone; join_cluster then works again
 * (~0.8 s). restart() waits for the rejoin and runs join_cluster only if it does not happen, and
 * reports which one it was. Not covered: both nodes down at once (Mnesia on the first to come back
 * may wait for the tables of the node that went down last).
 */
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { type Certificate, createCertificate } from "./certs.js";
import {
  createEjabberdDatabase,
  type EjabberdHandle,
  type EjabberdOptions,
  type EjabberdSqlOptions,
  startEjabberd,
} from "./ejabberd.js";
import { HarnessError } from "./errors.js";
import { freePort, freePorts } from "./ports.js";
import { type PostgresHandle, startPostgres } from "./postgres.js";
import { makeTempDir } from "./tmp.js";

export interface EjabberdClusterOptions
  extends Pick<
    EjabberdOptions,
    | "domain"
    | "admins"
    | "requireEncryption"
    | "resumeTimeout"
    | "extraModulesYaml"
    | "nodeCreators"
    | "includeConfigFiles"
    | "c2sOptions"
    | "startTimeoutMs"
  > {
  /**
   * The harness PostgreSQL to keep the data in; the cluster creates its database there once. Default:
   * the cluster starts its own PostgreSQL and stops it in stop().
   */
  postgres?: PostgresHandle;
  /** Database name in `postgres`. Default "ejabberd_cluster". */
  database?: string;
  /** Loopback addresses of node A and B (their node names are `ejabberd@<address>`). */
  addresses?: [string, string];
  /** c2s ports of node A and B; default free ones. */
  ports?: [number, number];
  /** How long to wait for the nodes to list each other after a join or a restart. Default 20 s. */
  joinTimeoutMs?: number;
}

/** One node: its instance handle (port, node name, ctl, ...) plus where it sits in the cluster. */
export interface ClusterNode extends EjabberdHandle {
  index: 0 | 1;
  /** beam.smp's pid (the instance's process group leader). */
  pid: number;
}

export interface ClusterTimings {
  /** Per node: from startEjabberd until its c2s port accepted connections (both start in parallel). */
  startMs: [number, number];
  /** `ejabberdctl join_cluster` on node B, until the command returned. */
  joinCommandMs: number;
  /** join_cluster on node B until both nodes list each other (list_cluster on both). */
  joinMs: number;
}

export interface RestartResult {
  /** From startEjabberd until the node's c2s port accepted connections. */
  startMs: number;
  /**
   * From the port opening until both nodes list each other. An upper bound: it includes at least one
   * list_cluster on both nodes (two ejabberdctl boots in parallel, ~0.5 s idle, 2-3 s on a loaded machine).
   */
  rejoinMs: number;
  /** "mnesia": it rejoined by itself from its Mnesia dir; "join_cluster": the harness had to join it. */
  rejoinedBy: "mnesia" | "join_cluster";
}

export interface EjabberdClusterHandle {
  domain: string;
  pubsubJid: string;
  host: string;
  caFile: string;
  certificate: Certificate;
  sql: EjabberdSqlOptions;
  postgres: PostgresHandle;
  /** The current handles of node A and B (restart() replaces one). */
  readonly nodes: readonly [ClusterNode, ClusterNode];
  timings: ClusterTimings;
  /** Whether node i's process is alive. */
  running(i: 0 | 1): boolean;
  /** `ejabberdctl list_cluster` on node i: the running nodes it sees, sorted. */
  listCluster(i: 0 | 1): Promise<string[]>;
  /** A crash: SIGKILL to node i's process group. Resolves when it has exited; its Mnesia dir stays. */
  kill(i: 0 | 1): Promise<void>;
  /** Starts node i again (same port, node name, cookie, Mnesia dir, database) and waits until it is back in the cluster. */
  restart(i: 0 | 1): Promise<RestartResult>;
  /** Registers an account once (through a running node): it is in PostgreSQL, so both nodes know it. */
  register(user: string, password: string): Promise<void>;
  stop(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Whether `port` can be bound on `host` now. */
function canBind(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.unref();
    s.once("error", () => resolve(false));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** A port free on every one of `hosts` (the distribution port both nodes share). */
async function freePortOn(hosts: string[]): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await freePort();
    const ok = await Promise.all(hosts.map((h) => canBind(h, port)));
    if (ok.every(Boolean)) return port;
  }
  throw new HarnessError("harness.cluster_no_port", `no port free on all of ${hosts.join(", ")}`);
}

/** The node names in `ejabberdctl list_cluster` output ('ejabberd@127.0.0.2' per line), sorted. */
export function parseListCluster(out: string): string[] {
  return out
    .split("\n")
    .map((l) => l.trim().replace(/^'(.*)'$/, "$1"))
    .filter((l) => l !== "")
    .sort();
}

export async function startEjabberdCluster(opts: EjabberdClusterOptions = {}): Promise<EjabberdClusterHandle> {
  const domain = opts.domain ?? "iot.test";
  const addresses = opts.addresses ?? ["127.0.0.2", "127.0.0.3"];
  for (const a of addresses)
    if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a))
      throw new HarnessError("harness.cluster_address", `cluster node addresses must be loopback: ${a}`);
  const joinTimeoutMs = opts.joinTimeoutMs ?? 20_000;
  // Outlives node restarts: the certificate and both Mnesia dirs (an instance removes its own dir).
  const tmp = makeTempDir("iot-ejabberd-cluster-");
  const ownPostgres = opts.postgres === undefined;
  let postgres: PostgresHandle | undefined = opts.postgres;
  const live: Array<ClusterNode | undefined> = [undefined, undefined];
  const stopAll = async (): Promise<void> => {
    const results = await Promise.allSettled(live.map((n) => n?.stop()));
    if (ownPostgres) await postgres?.stop();
    tmp.remove();
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
  };

  try {
    postgres ??= await startPostgres();
    const pg = postgres;
    const sql = await createEjabberdDatabase(pg, opts.database ?? "ejabberd_cluster");
    const certificate = await createCertificate({ dir: tmp.path, host: domain });
    const cookie = randomBytes(16).toString("hex");
    const distPort = await freePortOn(addresses);
    const ports = opts.ports ?? ((await freePorts(2)) as [number, number]);
    const dataDirs = ["a", "b"].map((n) => {
      const d = join(tmp.path, `mnesia-${n}`);
      mkdirSync(d, { mode: 0o700 });
      return d;
    }) as [string, string];

    const startNode = async (i: 0 | 1): Promise<{ node: ClusterNode; ms: number }> => {
      const t0 = Date.now();
      const h = await startEjabberd({
        domain,
        certificate,
        admins: opts.admins,
        requireEncryption: opts.requireEncryption,
        resumeTimeout: opts.resumeTimeout,
        extraModulesYaml: opts.extraModulesYaml,
        nodeCreators: opts.nodeCreators,
        includeConfigFiles: opts.includeConfigFiles,
        c2sOptions: opts.c2sOptions,
        startTimeoutMs: opts.startTimeoutMs,
        sql,
        port: ports[i],
        nodeName: `ejabberd@${addresses[i]}`,
        distAddress: addresses[i],
        distPort,
        cookie,
        dataDir: dataDirs[i],
      });
      const node: ClusterNode = { ...h, index: i, pid: h.process.pid };
      live[i] = node;
      return { node, ms: Date.now() - t0 };
    };

    const nodeOf = (i: 0 | 1): ClusterNode => {
      const n = live[i];
      if (n === undefined)
        throw new HarnessError("harness.cluster_node_missing", `cluster node ${i} was never started`);
      return n;
    };
    const running = (i: 0 | 1): boolean => live[i]?.process.running ?? false;
    const listCluster = async (i: 0 | 1): Promise<string[]> => parseListCluster(await nodeOf(i).ctl(["list_cluster"]));
    const both = addresses.map((a) => `ejabberd@${a}`).sort();
    const together = async (): Promise<boolean> => {
      const lists = await Promise.all([listCluster(0), listCluster(1)]);
      return lists.every((l) => l.length === 2 && l[0] === both[0] && l[1] === both[1]);
    };
    const waitTogether = async (timeoutMs: number): Promise<boolean> => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (await together()) return true;
        if (Date.now() > deadline) return false;
        await sleep(200);
      }
    };
    /** Joins node i to the other one; resolves with how long the join_cluster command took. */
    const joinCluster = async (i: 0 | 1): Promise<number> => {
      const other = nodeOf(i === 0 ? 1 : 0);
      const t0 = Date.now();
      try {
        await nodeOf(i).ctl(["join_cluster", other.node]);
      } catch (err) {
        // join_cluster restarts ejabberd on the joining node; once it met an application still
        // starting ({already_started,ejabberd}). Once more, after a pause, before giving up.
        if (!/already_started/.test((err as Error).message)) throw err;
        await sleep(2000);
        await nodeOf(i).ctl(["join_cluster", other.node]);
      }
      const commandMs = Date.now() - t0;
      if (!(await waitTogether(joinTimeoutMs))) {
        const lists = await Promise.all([listCluster(0), listCluster(1)]).catch((e: unknown) => String(e));
        throw new HarnessError(
          "harness.cluster_join",
          `the nodes do not list each other ${joinTimeoutMs} ms after join_cluster: ${JSON.stringify(lists)}`,
          { lists },
        );
      }
      return commandMs;
    };

    const [a, b] = await Promise.all([startNode(0), startNode(1)]);
    const tJoin = Date.now();
    const joinCommandMs = await joinCluster(1);
    const timings: ClusterTimings = { startMs: [a.ms, b.ms], joinCommandMs, joinMs: Date.now() - tJoin };

    let stopped = false;
    return {
      domain,
      pubsubJid: `pubsub.${domain}`,
      host: "127.0.0.1",
      caFile: certificate.caFile,
      certificate,
      sql,
      postgres: pg,
      get nodes(): readonly [ClusterNode, ClusterNode] {
        return [nodeOf(0), nodeOf(1)];
      },
      timings,
      running,
      listCluster,
      async kill(i) {
        const n = nodeOf(i);
        n.process.killGroup("SIGKILL");
        await n.process.exited;
        await n.stop(); // removes the instance's dir (config, logs); the Mnesia dir is the cluster's
      },
      async restart(i) {
        if (stopped) throw new HarnessError("harness.cluster_stopped", "the cluster was stopped");
        if (running(i)) throw new HarnessError("harness.cluster_running", `cluster node ${i} is running`);
        const { ms } = await startNode(i);
        const t0 = Date.now();
        // Mnesia connects to the other node listed in its schema at start: usually done by now.
        if (await waitTogether(Math.min(joinTimeoutMs, 5000)))
          return { startMs: ms, rejoinMs: Date.now() - t0, rejoinedBy: "mnesia" };
        await joinCluster(i);
        return { startMs: ms, rejoinMs: Date.now() - t0, rejoinedBy: "join_cluster" };
      },
      async register(user, password) {
        const n = running(0) ? nodeOf(0) : nodeOf(1);
        try {
          await n.register(user, password);
        } catch (first) {
          // Once in a few dozen parallel calls on a loaded 2-core machine, an ejabberdctl call
          // exited 1 (seen once, not reproduced since): say so, and try once more. "already
          // registered" then means the first call did register it.
          process.stderr.write(`[harness] ejabberd-cluster: register ${user} failed, retrying: ${String(first)}\n`);
          await sleep(500);
          await n.register(user, password).catch((err: unknown) => {
            if (!/already registered/.test(String(err))) throw err;
          });
        }
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        await stopAll();
      },
    };
  } catch (err) {
    await stopAll().catch(() => undefined); // the start error is the one worth reporting
    throw err;
  }
}
