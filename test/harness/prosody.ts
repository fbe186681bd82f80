/**
 * A private Prosody 0.12 instance per test: own config, data, log and pid file in a temp dir, c2s on
 * a free 127.0.0.1 port, no s2s/http listeners. Started as `prosody --config FILE -F` (foreground)
 * under the harness process rules (process group, pdeathsig, teardown registry).
 *
 * Storage is Prosody's file storage (`internal`) in the temp dir unless `storage` names a SQL
 * database (mod_storage_sql through LuaDBI); `include` pulls in config files such as the shipped
 * deploy/servers/prosody/fleet.cfg.lua with Prosody's own `Include` directive.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Certificate, createCertificate } from "./certs.js";
import { withTimeout } from "./cleanup.js";
import { HarnessError } from "./errors.js";
import { freePort, waitForPort } from "./ports.js";
import { type PeerProcess, runCommand, spawnPeer } from "./process.js";
import { makeTempDir } from "./tmp.js";

/**
 * Prosody's SQL storage (`storage = "sql"` and the `sql` table of mod_storage_sql). PostgreSQL is
 * reached over TCP with a password; an SQLite3 `database` is a file path (a relative one is taken
 * from Prosody's data_path, which the harness removes at stop()).
 */
export type ProsodySqlStorage =
  | { driver: "PostgreSQL"; host: string; port: number; database: string; username: string; password: string }
  | { driver: "SQLite3"; database: string };

const SHIPPED = (name: string): string =>
  fileURLToPath(new URL(`../../deploy/servers/prosody/${name}`, import.meta.url));
/** The shipped fleet tuning (deploy/servers/prosody/fleet.cfg.lua), for `include`. */
export const PROSODY_FLEET_CONFIG = SHIPPED("fleet.cfg.lua");
/** The shipped storage files; their placeholders must be filled in before use (docs/servers.md). */
export const PROSODY_STORAGE_CONFIGS = {
  PostgreSQL: SHIPPED("storage-postgresql.cfg.lua"),
  SQLite3: SHIPPED("storage-sqlite.cfg.lua"),
} as const;

/** The shipped Prosody modules (deploy/servers/prosody/modules/), for `plugin_paths`. */
export const PROSODY_SHIPPED_MODULES = SHIPPED("modules");

/**
 * SASL2 (XEP-0388), Bind2 and FAST from Debian's prosody-modules, with the shipped shim that lets
 * them run on 0.12 (docs/servers.md). Pass as extraModules, with `sasl2PluginPaths` as extraGlobalLua.
 */
export const PROSODY_SASL2_MODULES = ["iot_sasl2_compat", "sasl2", "sasl2_bind2", "sasl2_fast"];
export const sasl2PluginPaths = `plugin_paths = { ${JSON.stringify(PROSODY_SHIPPED_MODULES)} }`;

/** Debian's prosody-modules package is installed (its modules live beside Prosody's own). */
export function prosodyModulesInstalled(): boolean {
  return existsSync("/usr/lib/prosody/modules/mod_sasl2/mod_sasl2.lua");
}

/**
 * True when the Lua that runs Prosody can load LuaDBI and the driver's module (Debian:
 * lua-dbi-postgresql, lua-dbi-sqlite3). The interpreter is read from /usr/bin/prosody's `#!` line.
 */
export function prosodySqlDriverInstalled(driver: ProsodySqlStorage["driver"]): boolean {
  let lua = "lua5.4";
  try {
    const first = readFileSync("/usr/bin/prosody", "utf8").split("\n", 1)[0] ?? "";
    lua = /^#!\s*(?:\/usr\/bin\/env\s+)?(\S+)/.exec(first)?.[1] ?? lua;
  } catch {
    return false; // no Prosody at all
  }
  const mod = driver === "PostgreSQL" ? "dbd.postgresql" : "dbd.sqlite3";
  const r = spawnSync(lua, ["-e", `require "DBI"; require "${mod}"`], { stdio: "ignore", timeout: 10_000 });
  return r.status === 0;
}

export interface ProsodyOptions {
  /** XMPP domain. Default "iot.test". */
  domain?: string;
  /**
   * TLS mode. true (default): ssl configured with the harness certificate.
   * false: no ssl config at all and mod_tls not loaded, so STARTTLS is never offered.
   */
  tls?: boolean;
  /** c2s_require_encryption. Default true (only meaningful with tls). */
  requireEncryption?: boolean;
  /** Use this certificate instead of generating a fresh one. */
  certificate?: Certificate;
  /** Global admins (bare JIDs). Global admins may also create pubsub nodes and run XEP-0133. */
  admins?: string[];
  /** Admins of the pubsub component only (bare JIDs). */
  pubsubAdmins?: string[];
  /** allow_registration for XEP-0077 in-band registration. Default false. */
  allowRegistration?: boolean;
  /** smacks_hibernation_time in seconds. Default 30 (short for tests; Prosody's default is 600). */
  smacksHibernationTime?: number;
  /** Other smacks knobs, passed through when set. */
  smacksMaxUnackedStanzas?: number;
  smacksMaxQueueSize?: number;
  /** pubsub_max_items. Default left to Prosody. */
  pubsubMaxItems?: number;
  /** Extra modules to enable. */
  extraModules?: string[];
  /** SQL storage instead of the default file storage (`internal`) in the temp dir. */
  storage?: ProsodySqlStorage;
  /**
   * Lowest level written to the log file. Default debug: tests read every stanza there. A
   * benchmark sets info, since formatting each stanza costs Prosody more than handling it.
   */
  logLevel?: "debug" | "info" | "warn";
  /**
   * Config files pulled in with `Include "path"`, after the harness's own global settings (so their
   * values win) and before `extraGlobalLua`. Prosody reads every included file in the global scope.
   */
  include?: string[];
  /** Raw Lua appended to the global section (before VirtualHost), after `include`. */
  extraGlobalLua?: string;
  /** Raw Lua appended inside the VirtualHost section. */
  extraHostLua?: string;
  /** Raw Lua appended inside the pubsub Component section (e.g. modules_enabled for a test module). */
  extraPubsubLua?: string;
  /** Start timeout. Default 10 s. */
  startTimeoutMs?: number;
  /** c2s port; default a free one. The demo uses a fixed port so examples/sim.yaml can name it. */
  port?: number;
}

export interface ProsodyHandle {
  /** Address the client connects to (always 127.0.0.1). */
  host: string;
  port: number;
  domain: string;
  pubsubJid: string;
  /** Trust anchor for clients (null when tls: false). */
  caFile: string | null;
  certificate: Certificate | null;
  certFingerprintSha256: string | null;
  dir: string;
  dataDir: string;
  logFile: string;
  configFile: string;
  readonly process: PeerProcess;
  /** Creates an account with prosodyctl (works while the server runs). */
  register(user: string, password: string): Promise<void>;
  unregister(user: string): Promise<void>;
  /** Last lines of Prosody's own log file. */
  logTail(lines?: number): string;
  /**
   * Stops Prosody and starts it again on the same config, data and port: what was stored survives,
   * sessions (stream-management state included) do not. `process` is the new one afterwards.
   */
  restart(): Promise<void>;
  /** SIGTERM, SIGKILL after a grace period; removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

const BASE_MODULES = [
  "roster",
  "saslauth",
  "disco",
  "ping",
  "pep",
  "register",
  "admin_adhoc",
  "invites",
  "invites_adhoc",
  "invites_register",
  "smacks",
  "version",
  "carbons",
];

const lua = (s: string): string => JSON.stringify(s); // JSON string escapes are valid Lua escapes here
const luaList = (xs: string[]): string => `{ ${xs.map(lua).join(", ")} }`;

/** `storage = ...` and, for SQL, mod_storage_sql's `sql = { ... }`. */
export function renderProsodyStorage(storage: ProsodySqlStorage | undefined): string[] {
  if (!storage) return ['storage = "internal"'];
  const fields =
    storage.driver === "PostgreSQL"
      ? [
          `driver = ${lua(storage.driver)}`,
          `database = ${lua(storage.database)}`,
          `username = ${lua(storage.username)}`,
          `password = ${lua(storage.password)}`,
          `host = ${lua(storage.host)}`,
          `port = ${Number(storage.port)}`,
        ]
      : [`driver = ${lua(storage.driver)}`, `database = ${lua(storage.database)}`];
  return ['storage = "sql"', `sql = { ${fields.join(", ")} }`];
}

export function renderProsodyConfig(p: {
  domain: string;
  port: number;
  dataDir: string;
  certDir: string;
  logFile: string;
  pidFile: string;
  tls: boolean;
  requireEncryption: boolean;
  cert: Certificate | null;
  admins: string[];
  pubsubAdmins: string[];
  allowRegistration: boolean;
  smacksHibernationTime: number;
  smacksMaxUnackedStanzas?: number;
  smacksMaxQueueSize?: number;
  pubsubMaxItems?: number;
  modules: string[];
  runAsRoot: boolean;
  logLevel?: "debug" | "info" | "warn";
  storage?: ProsodySqlStorage;
  include?: string[];
  extraGlobalLua?: string;
  extraHostLua?: string;
  extraPubsubLua?: string;
}): string {
  const lines = [
    "-- Generated by test/harness/prosody.ts for one test run.",
    `run_as_root = ${p.runAsRoot}`,
    'interfaces = { "127.0.0.1" }',
    `c2s_ports = { ${p.port} }`,
    "c2s_direct_tls_ports = { }",
    "s2s_ports = { }",
    "http_ports = { }",
    "https_ports = { }",
    "component_ports = { }",
    "s2s_direct_tls_ports = { }",
    `data_path = ${lua(p.dataDir)}`,
    // Points certmanager at our own dir; without it Prosody logs an error about ./certs.
    `certificates = ${lua(p.certDir)}`,
    `pidfile = ${lua(p.pidFile)}`,
    `log = { ${p.logLevel ?? "debug"} = ${lua(p.logFile)} }`,
    'authentication = "internal_hashed"',
    ...renderProsodyStorage(p.storage),
    `admins = ${luaList(p.admins)}`,
    `modules_enabled = ${luaList(p.tls ? [...p.modules, "tls"] : p.modules)}`,
    'modules_disabled = { "s2s", "posix" }',
    `allow_registration = ${p.allowRegistration}`,
    `c2s_require_encryption = ${p.tls && p.requireEncryption}`,
    "s2s_require_encryption = false",
    `smacks_hibernation_time = ${p.smacksHibernationTime}`,
  ];
  if (p.smacksMaxUnackedStanzas !== undefined) lines.push(`smacks_max_unacked_stanzas = ${p.smacksMaxUnackedStanzas}`);
  if (p.smacksMaxQueueSize !== undefined) lines.push(`smacks_max_queue_size = ${p.smacksMaxQueueSize}`);
  if (p.pubsubMaxItems !== undefined) lines.push(`pubsub_max_items = ${p.pubsubMaxItems}`);
  if (p.tls && p.cert) lines.push(`ssl = { certificate = ${lua(p.cert.certFile)}, key = ${lua(p.cert.keyFile)} }`);
  for (const file of p.include ?? []) lines.push(`Include ${lua(file)}`);
  if (p.extraGlobalLua) lines.push(p.extraGlobalLua);
  lines.push("", `VirtualHost ${lua(p.domain)}`);
  if (p.tls && p.cert) lines.push(`  ssl = { certificate = ${lua(p.cert.certFile)}, key = ${lua(p.cert.keyFile)} }`);
  if (p.extraHostLua) lines.push(p.extraHostLua);
  lines.push("", `Component ${lua(`pubsub.${p.domain}`)} "pubsub"`, `  admins = ${luaList(p.pubsubAdmins)}`);
  if (p.extraPubsubLua) lines.push(p.extraPubsubLua);
  lines.push("");
  return lines.join("\n");
}

export async function startProsody(opts: ProsodyOptions = {}): Promise<ProsodyHandle> {
  const domain = opts.domain ?? "iot.test";
  const tls = opts.tls ?? true;
  const tmp = makeTempDir("iot-prosody-");
  const dir = tmp.path;
  const dataDir = join(dir, "data");
  const logFile = join(dir, "prosody.log");
  const pidFile = join(dir, "prosody.pid");
  const configFile = join(dir, "prosody.cfg.lua");
  const { mkdirSync } = await import("node:fs");
  mkdirSync(dataDir, { mode: 0o700 });
  const cert = tls ? (opts.certificate ?? (await createCertificate({ dir, host: domain }))) : null;
  const port = opts.port ?? (await freePort());
  writeFileSync(
    configFile,
    renderProsodyConfig({
      domain,
      port,
      dataDir,
      certDir: dir,
      logFile,
      pidFile,
      tls,
      requireEncryption: opts.requireEncryption ?? true,
      cert,
      admins: opts.admins ?? [],
      pubsubAdmins: opts.pubsubAdmins ?? [],
      allowRegistration: opts.allowRegistration ?? false,
      smacksHibernationTime: opts.smacksHibernationTime ?? 30,
      smacksMaxUnackedStanzas: opts.smacksMaxUnackedStanzas,
      smacksMaxQueueSize: opts.smacksMaxQueueSize,
      pubsubMaxItems: opts.pubsubMaxItems,
      modules: [...BASE_MODULES, ...(opts.extraModules ?? [])],
      runAsRoot: process.getuid?.() === 0,
      storage: opts.storage,
      include: opts.include,
      extraGlobalLua: opts.extraGlobalLua,
      extraHostLua: opts.extraHostLua,
      extraPubsubLua: opts.extraPubsubLua,
      logLevel: opts.logLevel,
    }),
  );
  const spawnProsody = () => spawnPeer("prosody", ["--config", configFile, "-F"], { name: "prosody", cwd: dir });
  let proc = spawnProsody();

  const logTail = (lines = 40): string => {
    if (!existsSync(logFile)) return "(no log file yet)";
    return readFileSync(logFile, "utf8").split("\n").slice(-lines).join("\n");
  };
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await proc.stop(3000);
    tmp.remove();
  };

  const timeoutMs = opts.startTimeoutMs ?? 10000;
  try {
    await Promise.race([
      waitForPort(port, timeoutMs),
      proc.exited.then((exit) => {
        throw new HarnessError("harness.prosody_exited", `prosody exited during start (${exit.code ?? exit.signal})`);
      }),
    ]);
  } catch (err) {
    const detail = `prosody output:\n${proc.outputTail(20)}\nprosody log tail:\n${logTail(30)}`;
    await stop().catch(() => undefined); // the start error below is the one worth reporting
    throw new HarnessError(
      "harness.prosody_start_failed",
      `Prosody did not start on 127.0.0.1:${port}: ${(err as Error).message}\n${detail}`,
      { port, configFile },
      { cause: err },
    );
  }

  const ctl = (args: string[]): Promise<unknown> =>
    withTimeout(
      runCommand("prosodyctl", ["--config", configFile, ...args], { cwd: dir, timeoutMs: 15000 }),
      16000,
      "prosodyctl",
    );

  return {
    host: "127.0.0.1",
    port,
    domain,
    pubsubJid: `pubsub.${domain}`,
    caFile: cert?.caFile ?? null,
    certificate: cert,
    certFingerprintSha256: cert?.fingerprintSha256 ?? null,
    dir,
    dataDir,
    logFile,
    configFile,
    get process() {
      return proc;
    },
    async restart() {
      await proc.stop(3000);
      proc = spawnProsody();
      await Promise.race([
        waitForPort(port, timeoutMs),
        proc.exited.then((exit) => {
          throw new HarnessError(
            "harness.prosody_exited",
            `prosody exited during restart (${exit.code ?? exit.signal})`,
          );
        }),
      ]);
    },
    async register(user, password) {
      await ctl(["register", user, domain, password]);
    },
    async unregister(user) {
      await ctl(["deluser", `${user}@${domain}`]);
    },
    logTail,
    stop,
  };
}
