/**
 * A private PostgreSQL 15 (Debian's postgresql-15) for the servers' SQL storage: `initdb` in a
 * temp dir, its own loopback port, password login for one role, torn down with the test process.
 *
 * PostgreSQL refuses to run as root, and the tests run as root on CI: when we are root, initdb and
 * the server run as the `postgres` system user that the Debian package creates (setpriv), in a
 * directory owned by it. Nothing listens outside 127.0.0.1; the Unix socket goes into the temp dir,
 * not /var/run/postgresql, so a system cluster, if any, is never touched.
 */
import { chownSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HarnessError } from "./errors.js";
import { freePort, waitForPort } from "./ports.js";
import { type PeerProcess, runCommand, spawnPeer } from "./process.js";
import { makeTempDir } from "./tmp.js";

const PG_BIN = "/usr/lib/postgresql/15/bin";

export function postgresInstalled(): boolean {
  return existsSync(join(PG_BIN, "postgres")) && existsSync(join(PG_BIN, "initdb"));
}

export interface PostgresOptions {
  /** Role the servers log in as (password auth over TCP). Default "xmpp". */
  user?: string;
  password?: string;
  /** Server settings appended to postgresql.conf, e.g. { max_connections: "200" }. */
  settings?: Record<string, string>;
  startTimeoutMs?: number;
}

export interface PostgresHandle {
  host: string;
  port: number;
  user: string;
  password: string;
  dir: string;
  /** The server logs to stderr: the last lines are in process.outputTail(). */
  process: PeerProcess;
  /** Creates a database owned by `user`. */
  createDatabase(name: string): Promise<void>;
  /**
   * Runs SQL (a string, or a file with `file`) in `db` as the owner role; returns psql's output.
   * `tuples: true` prints rows only, unaligned, fields separated by `|` (psql -At), for parsing.
   */
  psql(db: string, sql: { text?: string; file?: string; tuples?: boolean }): Promise<string>;
  stop(): Promise<void>;
}

interface RunAs {
  /**
   * Prefix for commands: setpriv to the postgres user when we are root. It sets the parent-death
   * signal again: the kernel clears the one spawnPeer's setpriv set when the uid changes, and
   * without it a test process killed with SIGKILL left PostgreSQL running.
   */
  wrap(cmd: string, args: string[]): [string, string[]];
  uid?: number;
  gid?: number;
}

async function runAs(): Promise<RunAs> {
  if (process.getuid?.() !== 0) return { wrap: (cmd, args) => [cmd, args] };
  const id = await runCommand("id", ["-u", "postgres"], { timeoutMs: 5000 }).catch(() => undefined);
  const gid = await runCommand("id", ["-g", "postgres"], { timeoutMs: 5000 }).catch(() => undefined);
  if (!id || !gid)
    throw new HarnessError(
      "harness.postgres_no_user",
      "running as root and there is no `postgres` user to run PostgreSQL as (apt-get install postgresql-15)",
    );
  const uid = Number(id.stdout.trim());
  const g = Number(gid.stdout.trim());
  return {
    uid,
    gid: g,
    wrap: (cmd, args) => [
      "setpriv",
      [`--reuid=${uid}`, `--regid=${g}`, "--clear-groups", "--pdeathsig", "SIGKILL", "--", cmd, ...args],
    ],
  };
}

export async function startPostgres(opts: PostgresOptions = {}): Promise<PostgresHandle> {
  if (!postgresInstalled())
    throw new HarnessError("harness.postgres_missing", `no PostgreSQL 15 in ${PG_BIN} (apt-get install postgresql-15)`);
  const user = opts.user ?? "xmpp";
  const password = opts.password ?? "xmpp-harness-secret";
  const as = await runAs();
  const tmp = makeTempDir("iot-postgres-");
  const dir = tmp.path;
  const dataDir = join(dir, "data");
  const socketDir = join(dir, "socket");
  const pwFile = join(dir, "pw");
  mkdirSync(socketDir);
  writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
  if (as.uid !== undefined && as.gid !== undefined) {
    // The temp dir is ours (0700); PostgreSQL's user must own what it writes to.
    for (const p of [dir, socketDir, pwFile]) chownSync(p, as.uid, as.gid);
  }
  const [initCmd, initArgs] = as.wrap(join(PG_BIN, "initdb"), [
    "-D",
    dataDir,
    "-U",
    user,
    "--pwfile",
    pwFile,
    "-A",
    "scram-sha-256",
    "-E",
    "UTF8",
    "--locale=C",
    "--no-sync",
  ]);
  await runCommand(initCmd, initArgs, { timeoutMs: 60_000, cwd: dir });
  const port = await freePort();
  const settings: Record<string, string> = {
    listen_addresses: "'127.0.0.1'",
    port: String(port),
    unix_socket_directories: `'${socketDir}'`,
    // A test database: durability is not what is measured, and fsync would make the 2-core CI slow.
    fsync: "off",
    synchronous_commit: "off",
    full_page_writes: "off",
    max_connections: "200",
    ...opts.settings,
  };
  writeFileSync(
    join(dataDir, "postgresql.auto.conf"),
    `${Object.entries(settings)
      .map(([k, v]) => `${k} = ${v}`)
      .join("\n")}\n`,
  );
  const [cmd, args] = as.wrap(join(PG_BIN, "postgres"), ["-D", dataDir]);
  const proc = spawnPeer(cmd, args, { name: "postgres", cwd: dir, env: { PGDATA: dataDir } });
  const env = { PGPASSWORD: password, PGHOST: "127.0.0.1", PGPORT: String(port), PGUSER: user };
  try {
    const deadline = Date.now() + (opts.startTimeoutMs ?? 30_000);
    await waitForPort(port, deadline - Date.now());
    // The postmaster listens before it accepts sessions ("the database system is starting up"):
    // wait until pg_isready says it accepts them, so createDatabase() right after start cannot fail.
    for (;;) {
      const ready = await runCommand(join(PG_BIN, "pg_isready"), ["-q", "-d", "postgres"], { env, timeoutMs: 5000 })
        .then(() => true)
        .catch(() => false);
      if (ready) break;
      if (Date.now() > deadline || !proc.running)
        throw new HarnessError("harness.postgres_not_ready", "PostgreSQL listens but does not accept sessions");
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (err) {
    await proc.stop();
    throw new HarnessError(
      "harness.postgres_start_failed",
      `PostgreSQL did not listen on 127.0.0.1:${port}: ${proc.outputTail()}`,
      { port },
      { cause: err },
    );
  }
  const psql = async (db: string, sql: { text?: string; file?: string; tuples?: boolean }): Promise<string> => {
    const args = ["-X", "-q", "-v", "ON_ERROR_STOP=1", ...(sql.tuples ? ["-A", "-t"] : []), "-d", db];
    if (sql.file) args.push("-f", sql.file);
    if (sql.text) args.push("-c", sql.text);
    const r = await runCommand(join(PG_BIN, "psql"), args, { timeoutMs: 60_000, env });
    return r.stdout;
  };
  let stopped = false;
  return {
    host: "127.0.0.1",
    port,
    user,
    password,
    dir,
    process: proc,
    createDatabase: async (name) => {
      await psql("postgres", { text: `CREATE DATABASE "${name}" OWNER "${user}"` });
    },
    psql,
    async stop() {
      if (stopped) return;
      stopped = true;
      await proc.stop(10_000);
      tmp.remove();
    },
  };
}
