/**
 * A private ejabberd 23.01 instance (the interoperability server), in the foreground on loopback.
 *
 * Debian's ejabberdctl hard-codes the `ejabberd` system user and the /etc, /var paths, so each
 * instance gets its own copy of the script with INSTALLUSER emptied (no `su`) and `exec` for the
 * final erl call (so the pid we hold is beam.smp itself and pdeathsig survives), plus private
 * config/spool/log dirs and HOME (the Erlang cookie lives there). As root, the copy's warning about
 * root is silenced, so a failed ejabberdctl command reports its own answer. ERL_DIST_PORT makes Erlang
 * distribution use one fixed loopback port instead of epmd, so nothing listens outside 127.0.0.1
 * and parallel instances never meet in a shared epmd.
 *
 * Storage is Mnesia in the temp dir unless `sql` is given: then the shipped
 * deploy/servers/ejabberd/sql-postgresql.yml, with its CHANGE-ME values filled in, is included, so
 * the file an admin installs is the one tested. The database must exist with ejabberd's schema
 * loaded: the caller does that, once, with createEjabberdDatabase() (several instances, e.g. the
 * nodes of a cluster or a restart on the same data, share one database). `includeConfigFiles`
 * includes other YAML files verbatim (ejabberd's include_config_file); a module an included file
 * defines replaces the harness's own, and `c2sOptions` adds options to the c2s listener (values may
 * be macros the included files define). ejabberdFleetConfig() wires deploy/servers/ejabberd/fleet.yml
 * the way docs/servers.md tells an admin to.
 *
 * `nodeName`, `distAddress`, `distPort`, `cookie` and `dataDir` (a Mnesia dir the caller owns, kept
 * at stop()) let test/harness/ejabberd-cluster.ts run two nodes of one cluster and restart one.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { type Certificate, createCertificate } from "./certs.js";
import { HarnessError } from "./errors.js";
import { freePorts, waitForPort } from "./ports.js";
import type { PostgresHandle } from "./postgres.js";
import { type PeerProcess, runCommand, spawnPeer } from "./process.js";
import { makeTempDir } from "./tmp.js";

export const EJABBERDCTL = "/usr/sbin/ejabberdctl";

const SHIPPED = fileURLToPath(new URL("../../deploy/servers/ejabberd/", import.meta.url));
/** The fleet settings an admin includes from ejabberd.yml (docs/servers.md). */
export const EJABBERD_FLEET_CONFIG = join(SHIPPED, "fleet.yml");
/** The PostgreSQL storage settings, with CHANGE-ME placeholders. */
export const EJABBERD_SQL_TEMPLATE = join(SHIPPED, "sql-postgresql.yml");
/** ejabberd's own PostgreSQL schemas (Debian package). */
export const EJABBERD_PG_SCHEMA = { old: "/usr/share/ejabberd/sql/pg.sql", new: "/usr/share/ejabberd/sql/pg.new.sql" };

/** Where an instance keeps its data in PostgreSQL (the values of sql-postgresql.yml's CHANGE-MEs). */
export interface EjabberdSqlOptions {
  host: string;
  port: number;
  database: string;
  username: string;
  password: string;
  /** `new_sql_schema`: must match the schema loaded into the database. Default "new", as shipped. */
  schema?: "old" | "new";
}

export function ejabberdInstalled(): boolean {
  return existsSync(EJABBERDCTL) && existsSync("/usr/bin/erl");
}

export interface EjabberdOptions {
  domain?: string;
  certificate?: Certificate;
  /** Bare JIDs in the admin ACL (XEP-0133 via mod_configure/mod_adhoc, pubsub node creation). */
  admins?: string[];
  /** starttls_required on c2s. Default true. */
  requireEncryption?: boolean;
  /** mod_stream_mgmt resume_timeout in seconds. Default 30. */
  resumeTimeout?: number;
  /** Raw YAML appended under `modules:` (indented two spaces). */
  extraModulesYaml?: string;
  /**
   * Who may create nodes on the pubsub component (mod_pubsub `access_createnode`). "admins" (the
   * default here) allows the admin ACL only; "local" allows every local account, as Debian's
   * packaged ejabberd.yml does (ejabberd's own default, `all`, allows even more), which lets another
   * account squat a device's node names (test/interop/node-squatting.test.ts).
   */
  nodeCreators?: "admins" | "local";
  /**
   * Keep everything persistent (accounts, rosters, pubsub) in PostgreSQL instead of Mnesia, through
   * the shipped sql-postgresql.yml. The database must hold ejabberd's schema already
   * (createEjabberdDatabase). The harness then sets no `auth_method`: accounts follow default_db.
   */
  sql?: EjabberdSqlOptions;
  /**
   * YAML files included verbatim (absolute paths), e.g. EJABBERD_FLEET_CONFIG. A module an included
   * file defines replaces the harness's; a top-level option the harness sets too is refused here.
   */
  includeConfigFiles?: string[];
  /**
   * Options added to the c2s listener, or replacing the harness's (max_stanza_size): written as
   * plain YAML scalars, so a macro name from an included file works.
   */
  c2sOptions?: Record<string, string | number | boolean>;
  /** Raw YAML list items appended under `listen:` after the c2s listener (indented two spaces), e.g. an ejabberd_http for mod_http_upload. */
  extraListenersYaml?: string;
  /** c2s port; default a free one. A restart on the same data (a new instance) keeps its clients' port. */
  port?: number;
  /**
   * Erlang node name. Default `ejabberd<port>@localhost` (a short name). A host part with a dot, e.g.
   * `ejabberd@127.0.0.2`, makes ejabberdctl use a long name (-name): what a cluster on one machine
   * needs, each node on its own loopback address (test/harness/ejabberd-cluster.ts).
   */
  nodeName?: string;
  /** Loopback address Erlang distribution listens on (inet_dist_use_interface). Default 127.0.0.1. */
  distAddress?: string;
  /** Erlang distribution port (ERL_DIST_PORT, no epmd). Default a free one. */
  distPort?: number;
  /** Erlang cookie, written to the instance's HOME before start; nodes of one cluster share it. */
  cookie?: string;
  /**
   * An existing directory for the Mnesia spool, owned by the caller: stop() leaves it in place, so a
   * later instance with the same node name starts on the same Mnesia (e.g. a cluster node rejoining).
   * Default a fresh dir inside the instance's temp dir, removed at stop().
   */
  dataDir?: string;
  startTimeoutMs?: number;
  /** ACLs the c2s access rule denies before allowing all (e.g. iot_revoked, docs/servers.md). */
  c2sDeny?: string[];
  /** Top-level YAML appended to the config (e.g. c2s_cafile for certificate login). */
  extraTopLevelYaml?: string;
}

export interface EjabberdHandle {
  host: string;
  port: number;
  domain: string;
  pubsubJid: string;
  caFile: string;
  certificate: Certificate;
  certFingerprintSha256: string;
  dir: string;
  dataDir: string;
  logFile: string;
  configFile: string;
  /** Erlang node name (unique per instance), e.g. for ejabberdctl or a later cluster join. */
  node: string;
  /** Where Erlang distribution listens (ERL_DIST_PORT on distAddress). */
  distAddress: string;
  distPort: number;
  process: PeerProcess;
  register(user: string, password: string): Promise<void>;
  unregister(user: string): Promise<void>;
  /** Runs any ejabberdctl command against this instance. */
  ctl(args: string[]): Promise<string>;
  logTail(lines?: number): string;
  stop(): Promise<void>;
}

const q = (s: string): string => JSON.stringify(s); // a JSON string is a valid YAML scalar
/** A listener option's value: numbers, booleans and plain names (macros, shaper rules) as they are. */
const scalar = (v: string | number | boolean): string =>
  typeof v === "string" && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(v) ? q(v) : String(v);

/** The modules the harness's config defines; an included file's definition replaces one of these. */
const HARNESS_MODULES: Record<string, (p: { resumeTimeout: number; domain: string }) => string> = {
  mod_adhoc: () => "{}",
  mod_admin_extra: () => "{}",
  mod_caps: () => "{}",
  mod_carboncopy: () => "{}",
  mod_configure: () => "{}",
  mod_disco: () => "{}",
  mod_last: () => "{}",
  mod_offline: () => "{}",
  mod_ping: () => "{}",
  mod_pubsub: (p) =>
    `\n    access_createnode: pubsub_createnode\n    hosts:\n      - ${q(`pubsub.${p.domain}`)}\n    plugins:\n      - "flat"\n      - "pep"`,
  mod_roster: () => "{}",
  mod_stream_mgmt: (p) => `\n    resume_timeout: ${p.resumeTimeout}`,
  mod_version: () => "{}",
};
/** Top-level options the harness always writes; an included file must not set them too. */
const HARNESS_SCALARS = ["loglevel", "log_rotate_count", "auth_method", "auth_password_format"];

export function renderEjabberdConfig(p: {
  domain: string;
  port: number;
  cert: Certificate;
  admins: string[];
  requireEncryption: boolean;
  resumeTimeout: number;
  extraModulesYaml?: string;
  nodeCreators?: "admins" | "local";
  /** Absolute paths for include_config_file. */
  includeFiles?: string[];
  /** Harness modules left out (an included file defines them). */
  omitModules?: ReadonlySet<string>;
  c2sOptions?: Record<string, string | number | boolean>;
  extraListenersYaml?: string;
  /** False when the storage comes from SQL: auth then follows default_db. Default true. */
  internalAuth?: boolean;
  /** ACLs denied the c2s access rule (e.g. iot_revoked from an included revoked-devices file). */
  c2sDeny?: string[];
  /** Top-level YAML appended as is (c2s_cafile and the like). */
  extraTopLevelYaml?: string;
}): string {
  const listener: Record<string, string | number | boolean> = {
    port: p.port,
    ip: "127.0.0.1",
    module: "ejabberd_c2s",
    max_stanza_size: 262144,
    access: "c2s",
    starttls: true,
    starttls_required: p.requireEncryption,
    ...p.c2sOptions,
  };
  const modules = Object.entries(HARNESS_MODULES)
    .filter(([name]) => !p.omitModules?.has(name))
    .map(([name, body]) => `  ${name}:${body(p).startsWith("\n") ? "" : " "}${body(p)}`)
    .join("\n");
  return `# Generated by test/harness/ejabberd.ts for one test run.
loglevel: ${process.env.IOT_EJABBERD_LOGLEVEL ?? "info"}
# Never rotate: with no rotated files kept, a rotation would delete the start of a debug log.
log_rotate_count: 0
log_rotate_size: infinity
hosts:
  - ${q(p.domain)}
certfiles:
  - ${q(p.cert.certFile)}
  - ${q(p.cert.keyFile)}
${
  p.includeFiles && p.includeFiles.length > 0
    ? `include_config_file:\n${p.includeFiles.map((f) => `  - ${q(f)}`).join("\n")}\n`
    : ""
}listen:
  -
${Object.entries(listener)
  .map(([k, v]) => `    ${k}: ${k === "ip" ? q(String(v)) : scalar(v)}`)
  .join("\n")}
${p.extraListenersYaml ? `${p.extraListenersYaml.replace(/\n$/, "")}\n` : ""}${p.internalAuth === false ? "" : "auth_method: internal\n"}auth_password_format: scram
acl:
  admin:
    user:
${p.admins.length > 0 ? p.admins.map((a) => `      - ${q(a)}`).join("\n") : '      - "nobody@invalid"'}
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
${(p.c2sDeny ?? []).map((acl) => `    deny: ${acl}\n`).join("")}    allow: all
  configure:
    allow: admin
  pubsub_createnode:
    allow: ${p.nodeCreators === "local" ? "local" : "admin"}
api_permissions:
  "console commands":
    from:
      - ejabberd_ctl
    who: all
    what: "*"
modules:
${modules}
${p.extraModulesYaml ?? ""}
${p.extraTopLevelYaml ?? ""}
`;
}

/**
 * The shipped sql-postgresql.yml with its CHANGE-ME values replaced: each key must be there exactly
 * once at the top level, and no CHANGE-ME value may be left (so the template cannot drift unseen).
 */
export function fillSqlTemplate(template: string, sql: EjabberdSqlOptions): string {
  const values: Record<string, string> = {
    sql_server: q(sql.host),
    sql_port: String(sql.port),
    sql_database: q(sql.database),
    sql_username: q(sql.username),
    sql_password: q(sql.password),
    new_sql_schema: String((sql.schema ?? "new") === "new"),
  };
  let text = template;
  for (const [key, value] of Object.entries(values)) {
    const re = new RegExp(`^${key}:.*$`, "gm");
    const hits = text.match(re)?.length ?? 0;
    if (hits !== 1)
      throw new HarnessError("harness.ejabberd_sql_template", `${key} appears ${hits} times in the SQL template`, {
        key,
      });
    text = text.replace(re, `${key}: ${value}`);
  }
  const left = text.split("\n").find((l) => !l.trimStart().startsWith("#") && l.includes("CHANGE-ME"));
  if (left !== undefined)
    throw new HarnessError("harness.ejabberd_sql_template", `a CHANGE-ME value is left in the SQL template: ${left}`);
  return text;
}

/** The fleet settings as an admin wires them: fleet.yml included, its limits on the c2s listener. */
export function ejabberdFleetConfig(): Pick<EjabberdOptions, "includeConfigFiles" | "c2sOptions"> {
  return {
    includeConfigFiles: [EJABBERD_FLEET_CONFIG],
    c2sOptions: {
      max_stanza_size: "FLEET_C2S_MAX_STANZA_SIZE",
      shaper: "fleet_c2s_shaper",
      backlog: "FLEET_C2S_BACKLOG",
    },
  };
}

/**
 * Creates `name` in a harness PostgreSQL and loads ejabberd's schema into it; returns what
 * startEjabberd's `sql` option needs. Once per database: instances sharing it (a restart, the nodes
 * of a cluster) get the same options.
 */
export async function createEjabberdDatabase(
  pg: PostgresHandle,
  name: string,
  schema: "old" | "new" = "new",
): Promise<EjabberdSqlOptions> {
  await pg.createDatabase(name);
  await pg.psql(name, { file: EJABBERD_PG_SCHEMA[schema] });
  return { host: pg.host, port: pg.port, database: name, username: pg.user, password: pg.password, schema };
}

/** Module names and top-level options an included file defines. */
function includedDefinitions(file: string): { modules: string[]; options: string[] } {
  if (!isAbsolute(file) || !existsSync(file))
    throw new HarnessError("harness.ejabberd_include", `include file must be an existing absolute path: ${file}`);
  const doc: unknown = parseYaml(readFileSync(file, "utf8"));
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) return { modules: [], options: [] };
  const top = doc as Record<string, unknown>;
  const modules = top.modules && typeof top.modules === "object" ? Object.keys(top.modules) : [];
  return { modules, options: Object.keys(top) };
}

export async function startEjabberd(opts: EjabberdOptions = {}): Promise<EjabberdHandle> {
  if (!ejabberdInstalled()) {
    throw new HarnessError("harness.ejabberd_missing", "ejabberd is not installed (run scripts/setup)", {});
  }
  // Checked before anything is created: a bad include fails here, naming the file.
  const includeFiles = [...(opts.includeConfigFiles ?? [])];
  const omitModules = new Set<string>();
  for (const file of includeFiles) {
    const defined = includedDefinitions(file);
    for (const m of defined.modules) omitModules.add(m);
    const clash = defined.options.filter((o) => HARNESS_SCALARS.includes(o));
    if (clash.length > 0)
      throw new HarnessError(
        "harness.ejabberd_include",
        `${file} sets ${clash.join(", ")}, which the harness sets too (ejabberd refuses a duplicated option)`,
        { file, clash },
      );
  }
  if (opts.dataDir !== undefined && !existsSync(opts.dataDir))
    throw new HarnessError("harness.ejabberd_data_dir", `dataDir does not exist: ${opts.dataDir}`, {
      dataDir: opts.dataDir,
    });
  const distAddress = opts.distAddress ?? "127.0.0.1";
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(distAddress))
    throw new HarnessError("harness.ejabberd_dist_address", `distAddress must be a loopback address: ${distAddress}`);
  const domain = opts.domain ?? "iot.test";
  const tmp = makeTempDir("iot-ejabberd-");
  const dir = tmp.path;
  const configDir = join(dir, "etc");
  const dataDir = opts.dataDir ?? join(dir, "spool");
  const logsDir = join(dir, "logs");
  for (const d of [configDir, logsDir, ...(opts.dataDir ? [] : [dataDir])]) mkdirSync(d, { mode: 0o700 });
  if (opts.cookie !== undefined) writeFileSync(join(dir, ".erlang.cookie"), opts.cookie, { mode: 0o400 });
  const cert = opts.certificate ?? (await createCertificate({ dir, host: domain }));
  const [freeC2s, freeDist] = (await freePorts(2)) as [number, number];
  const port = opts.port ?? freeC2s;
  const distPort = opts.distPort ?? freeDist;
  const configFile = join(configDir, "ejabberd.yml");
  const logFile = join(logsDir, "ejabberd.log");
  if (opts.sql) {
    const sqlFile = join(configDir, "sql-postgresql.yml");
    writeFileSync(sqlFile, fillSqlTemplate(readFileSync(EJABBERD_SQL_TEMPLATE, "utf8"), opts.sql), { mode: 0o600 });
    includeFiles.push(sqlFile);
  }
  writeFileSync(
    configFile,
    renderEjabberdConfig({
      domain,
      port,
      cert,
      admins: opts.admins ?? [],
      requireEncryption: opts.requireEncryption ?? true,
      resumeTimeout: opts.resumeTimeout ?? 30,
      extraModulesYaml: opts.extraModulesYaml,
      extraListenersYaml: opts.extraListenersYaml,
      nodeCreators: opts.nodeCreators ?? "admins",
      includeFiles,
      omitModules,
      c2sOptions: opts.c2sOptions,
      internalAuth: opts.sql === undefined,
      ...(opts.c2sDeny ? { c2sDeny: opts.c2sDeny } : {}),
      ...(opts.extraTopLevelYaml ? { extraTopLevelYaml: opts.extraTopLevelYaml } : {}),
    }),
  );
  copyFileSync("/etc/ejabberd/inetrc", join(configDir, "inetrc"));
  // A unique node name per instance: the ctl client addresses the node by name and dist port.
  const node = opts.nodeName ?? `ejabberd${port}@localhost`;
  writeFileSync(
    join(configDir, "ejabberdctl.cfg"),
    [
      `ERLANG_NODE=${node}`,
      `ERL_DIST_PORT=${distPort}`,
      // Same effect as INET_DIST_INTERFACE=127.0.0.1 without the extra erl boot ejabberdctl
      // spends parsing that variable (~0.5 s).
      `ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0 -kernel inet_dist_use_interface {${distAddress.replaceAll(".", ",")}}"`,
      `EJABBERD_PID_PATH=${join(dir, "ejabberd.pid")}`,
      `CONTRIB_MODULES_PATH=${join(dir, "contrib")}`,
      `CONTRIB_MODULES_CONF_DIR=${join(configDir, "modules.d")}`,
      "",
    ].join("\n"),
  );
  const ctlScript = join(dir, "ejabberdctl");
  const original = readFileSync(EJABBERDCTL, "utf8");
  const patched = original
    .replace(/^INSTALLUSER=.*$/m, "INSTALLUSER=")
    .replace(/as_current_user\) "\$@" ;;/, 'as_current_user) exec "$@" ;;')
    // As root (CI), this warning was all of stderr, and a failed ctl() reported it instead of the
    // command's own answer on stdout (runCommand shows stderr when there is any).
    .replace(
      /^(\s*)echo "WARNING: It is not recommended to run ejabberd as root" >&2$/m,
      "$1: # (harness) root is fine here",
    );
  if (patched === original || !patched.includes('exec "$@"')) {
    throw new HarnessError("harness.ejabberdctl_patch", "unexpected ejabberdctl layout; cannot make a private copy", {
      path: EJABBERDCTL,
    });
  }
  writeFileSync(ctlScript, patched, { mode: 0o755 });
  const ctlArgs = ["--config-dir", configDir, "--config", configFile, "--spool", dataDir, "--logs", logsDir];
  const env = { HOME: dir, EJABBERD_BYPASS_WARNINGS: "true" };
  const proc = spawnPeer(ctlScript, [...ctlArgs, "foreground"], { name: "ejabberd", cwd: dir, env });

  const logTail = (lines = 40): string =>
    existsSync(logFile) ? readFileSync(logFile, "utf8").split("\n").slice(-lines).join("\n") : "(no log file yet)";
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await proc.stop(5000);
    tmp.remove();
  };

  try {
    await Promise.race([
      waitForPort(port, opts.startTimeoutMs ?? 20000),
      proc.exited.then((exit) => {
        throw new HarnessError("harness.ejabberd_exited", `ejabberd exited during start (${exit.code ?? exit.signal})`);
      }),
    ]);
  } catch (err) {
    const detail = `ejabberd output:\n${proc.outputTail(30)}\nejabberd log tail:\n${logTail(30)}`;
    await stop().catch(() => undefined); // the start error below is the one worth reporting
    throw new HarnessError(
      "harness.ejabberd_start_failed",
      `ejabberd did not start on 127.0.0.1:${port}: ${(err as Error).message}\n${detail}`,
      { port, configFile },
      { cause: err },
    );
  }

  const ctl = async (args: string[]): Promise<string> =>
    (await runCommand(ctlScript, [...ctlArgs, ...args], { cwd: dir, env, timeoutMs: 20000 })).stdout;

  // The c2s port opens before every application and SQL pool has started: on a slow machine a
  // command at once failed (ejabberd_sql's worker atoms did not exist yet), and join_cluster met
  // {already_started,ejabberd}. Ready is: the node says ejabberd runs, and a query through the
  // storage (SQL when configured) answers.
  try {
    await waitReady(ctl, domain, opts.startTimeoutMs ?? 20000);
  } catch (err) {
    const detail = `ejabberd log tail:\n${logTail(30)}`;
    await stop().catch(() => undefined);
    throw new HarnessError(
      "harness.ejabberd_start_failed",
      `ejabberd listened on 127.0.0.1:${port} but did not become ready: ${(err as Error).message}\n${detail}`,
      { port, configFile },
      { cause: err },
    );
  }

  return {
    host: "127.0.0.1",
    port,
    domain,
    pubsubJid: `pubsub.${domain}`,
    caFile: cert.caFile,
    certificate: cert,
    certFingerprintSha256: cert.fingerprintSha256,
    dir,
    dataDir,
    logFile,
    configFile,
    node,
    distAddress,
    distPort,
    process: proc,
    async register(user, password) {
      await ctl(["register", user, domain, password]);
    },
    async unregister(user) {
      await ctl(["unregister", user, domain]);
    },
    ctl,
    logTail,
    stop,
  };
}

/** Polls until `ejabberdctl status` says ejabberd runs and `registered_users` (a storage query) answers. */
async function waitReady(ctl: (args: string[]) => Promise<string>, domain: string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (/is running in that node/.test(await ctl(["status"]))) {
        await ctl(["registered_users", domain]);
        return;
      }
      last = new Error("status does not say ejabberd is running yet");
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw last;
    await new Promise((r) => setTimeout(r, 250));
  }
}
