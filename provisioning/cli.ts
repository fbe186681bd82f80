/**
 * `iot-fleet`: the fleet admin's command line. Every command has --help; errors print one line
 * with the error code and exit with a documented status (exit-codes.ts, docs/provisioning.md).
 * Progress lines go to stderr, results to stdout (JSON with --json, a table otherwise).
 *
 * Files live under the fleet home (--home, $IOT_FLEET_HOME, default ./fleet):
 *   ca/ca.key.pem (0600) ca/ca.cert.pem   fleet.json (0600, the store)   revocations.json (signed)
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { createBundle, type BundleCredential, type BundleServer, serialiseBundle } from "./bundle.js";
import {
  CA_CERT_FILE,
  CA_KEY_FILE,
  certFingerprint,
  initCa,
  loadCa,
  loadCaCert,
  normaliseFingerprint,
  signDeviceCsr,
} from "./ca.js";
import { readCsr, sealToPublicKey } from "./device-key.js";
import { isProvisioningError, ProvisioningError } from "./errors.js";
import { EXIT, exitCodeFor } from "./exit-codes.js";
import { writeFileAtomic } from "./fsutil.js";
import { createRevocationList } from "./revocation.js";
import {
  type CredentialPath,
  addProvisioned,
  FleetStore,
  getDevice,
  markRevoked,
  markRotated,
  recordSeen,
} from "./store.js";
import type { AdminConnector, AdminSession } from "./admin-session.js";
import { generatePassword } from "./device/credentials.js";
import {
  addUser,
  changeUserPassword,
  createAccountInvite,
  deleteUser,
  disableUser,
  endUserSession,
  onlineUsers,
  requestDeviceRotation,
} from "./xmpp-admin.js";

export interface FleetIo {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
}

export interface FleetDeps {
  /** Opens the admin XMPP session; default: agent/xmpp's XmppSession (admin-session.ts). */
  connect?: AdminConnector;
  now?: () => Date;
  /** RSA size for `ca init`; tests pass 2048 to stay fast. */
  caKeyBits?: number;
  /** How long to wait for another run's store lock (default 5 s). */
  lockWaitMs?: number;
}

const GLOBAL_HELP = `Global options (any command):
      --home DIR                 Fleet home (default $IOT_FLEET_HOME or ./fleet).
      --passphrase-file FILE     CA key passphrase (or $IOT_FLEET_CA_PASSPHRASE).
  XMPP admin connection (provision without --invite-token, rotate, revoke, list --online):
      --admin-jid JID            Admin account (or $IOT_FLEET_ADMIN_JID).
      --admin-password-file FILE (or $IOT_FLEET_ADMIN_PASSWORD_FILE; $IOT_FLEET_ADMIN_PASSWORD).
      --server HOST:PORT         XMPP server, also written into bundles (or $IOT_FLEET_SERVER).
      --ca-file FILE             The server's CA certificate, trusted for TLS and embedded in bundles
                                 (or $IOT_FLEET_SERVER_CA_FILE).
      --pin SHA256               ...or the server certificate's SHA-256 pin.
      --timeout SECONDS          Per network step (default 20).`;

export const USAGE = `Usage: iot-fleet <command> [options]

Commands:
  ca init                 Create the fleet CA (signing key 0600 + self-signed certificate).
  ca show                 Print the CA certificate's subject, validity and SHA-256 fingerprint.
  provision DEVICE-ID     Make a signed enrolment bundle for one device.
  rotate DEVICE-ID        Have the device change its own password (or --admin-reset it).
  revoke DEVICE-ID        Delete/disable the account and add the device to the revocation list.
  revocations             Write the signed revocation list for devices.
  list                    Devices and their state (provisioned, enrolled, revoked, last seen).

Run 'iot-fleet <command> --help' for its options.

${GLOBAL_HELP}

Exit codes: 0 ok, 1 failure, 2 usage, 3 fleet state forbids it (unknown/enrolled/revoked device,
CA missing or present), 4 refused on security grounds (passphrase, CSR), 5 XMPP server failed or
refused, 6 fleet store locked or corrupt.`;

const HELP: Record<string, string> = {
  "ca init": `Usage: iot-fleet ca init [--cn NAME] [--org ORG] [--valid-days N] [--passphrase-file FILE] [--force]

Creates HOME/ca/ca.key.pem (RSA-3072, mode 0600, encrypted when a passphrase is given) and
HOME/ca/ca.cert.pem (self-signed, CA:true). Refuses to overwrite an existing CA unless --force.
Copy ca.cert.pem (or its fingerprint, see 'ca show') into device images: it is what devices trust.`,
  "ca show": `Usage: iot-fleet ca show

Prints the fleet CA certificate's subject, validity and SHA-256 fingerprint.`,
  provision: `Usage: iot-fleet provision DEVICE-ID --out FILE [--invite | --admin-password] [options]

Credential path (one):
      --invite                   (default) Ask the server for a one-time account invite (Prosody
                                 mod_invites_adhoc); the device registers itself with a password it
                                 generates. The password never leaves the device.
      --invite-token TOKEN       Use an invite token obtained elsewhere (e.g. prosodyctl); no XMPP step.
      --admin-password           Create the account now over XEP-0133 with a random password. With
                                 --csr the password is sealed to the device key; without, it is in
                                 clear inside the signed bundle (weaker: protect the file).
Device:
      --jid JID                  Device JID (default DEVICE-ID@<domain of --domain or --admin-jid>).
      --domain DOMAIN            XMPP domain of the device JID.
      --csr FILE                 Device CSR from 'iot-agent enroll --make-csr': issues a client
                                 certificate (SASL EXTERNAL) and seals the admin password to its key.
      --cert-days N              Client certificate validity (default 365).
      --resource RES             Resource the agent binds (default agent), for 'rotate'.
Bundle:
      --out FILE                 Where to write the bundle (mode 0600). Required.
      --pubsub SERVICE           Pubsub service JID (default: PEP).
      --operator JID             Operator allowed to run every command (repeatable). The admin JID is
                                 added as a fleet admin, allowed only 'rotate-credentials'.
      --valid-for DURATION       Bundle lifetime: 30m, 12h, 7d (default 7d).
      --tls-servername NAME      TLS name if it differs from the domain.
      --force                    Issue a new bundle for an already enrolled device.
      --json                     Print the result as JSON.`,
  rotate: `Usage: iot-fleet rotate DEVICE-ID [--admin-reset --out FILE]

Default: runs the device's ad-hoc command 'rotate-credentials' at DEVICE-JID/RESOURCE; the device
generates a new password, changes it with XEP-0077 and keeps its session (no telemetry lost).
--admin-reset: break-glass when the device is unreachable: sets a new random password with XEP-0133
change-user-password (the server closes the device's sessions) and writes a new admin-path bundle
to --out for re-enrolment ('iot-agent enroll --force'). Accepts --csr to seal it to the device key.`,
  revoke: `Usage: iot-fleet revoke DEVICE-ID [--disable] [--local-only] [--export FILE]

Ends the device's sessions and deletes its account (XEP-0133 delete-user; --disable tries
disable-user first, which neither Prosody 0.12 nor ejabberd 23.01 offer), marks it revoked and adds
its bundles, certificate serials and JID to the signed revocation list (HOME/revocations.json,
also copied to --export FILE). --local-only records the revocation without contacting the server.
Safe to re-run: a revoked device's account is deleted again if the first attempt failed.`,
  revocations: `Usage: iot-fleet revocations --out FILE

Writes the current revocation list, signed by the fleet CA, for 'iot-agent enroll --revocations'.`,
  list: `Usage: iot-fleet list [--online] [--json]

Lists known devices. --online asks the server which accounts are online (XEP-0133
get-online-users-list) and records their last-seen time first.`,
};

const GLOBAL_OPTIONS = {
  help: { type: "boolean", short: "h" },
  home: { type: "string" },
  "passphrase-file": { type: "string" },
  "admin-jid": { type: "string" },
  "admin-password-file": { type: "string" },
  server: { type: "string" },
  "ca-file": { type: "string" },
  pin: { type: "string" },
  timeout: { type: "string" },
  json: { type: "boolean" },
} as const;

const COMMAND_OPTIONS = {
  "ca init": {
    cn: { type: "string" },
    org: { type: "string" },
    "valid-days": { type: "string" },
    force: { type: "boolean" },
  },
  "ca show": {},
  provision: {
    invite: { type: "boolean" },
    "invite-token": { type: "string" },
    "admin-password": { type: "boolean" },
    jid: { type: "string" },
    domain: { type: "string" },
    csr: { type: "string" },
    "cert-days": { type: "string" },
    resource: { type: "string" },
    out: { type: "string", short: "o" },
    pubsub: { type: "string" },
    operator: { type: "string", multiple: true },
    "valid-for": { type: "string" },
    "tls-servername": { type: "string" },
    force: { type: "boolean" },
  },
  rotate: {
    "admin-reset": { type: "boolean" },
    out: { type: "string", short: "o" },
    csr: { type: "string" },
    "valid-for": { type: "string" },
  },
  revoke: { disable: { type: "boolean" }, "local-only": { type: "boolean" }, export: { type: "string" } },
  revocations: { out: { type: "string", short: "o" } },
  list: { online: { type: "boolean" } },
} as const;

type Values = Record<string, string | boolean | string[] | undefined>;

function usageError(msg: string, command?: string): ProvisioningError {
  return new ProvisioningError("usage", `${msg}${command ? `\n\n${HELP[command]}` : ""}`);
}

/** "30m", "12h", "7d", "90s" -> ms (bounded: 1 minute .. 366 days). */
export function parseDuration(s: string): number {
  const m = /^(\d+)([smhd])$/.exec(s.trim());
  if (!m) throw usageError(`not a duration: ${JSON.stringify(s)} (use e.g. 30m, 12h, 7d)`);
  const ms = Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "s" | "m" | "h" | "d"];
  if (ms < 60_000 || ms > 366 * 86_400_000) throw usageError(`duration ${s} is out of range (1m .. 366d)`);
  return ms;
}

function readSecretFile(file: string, what: string): string {
  try {
    return readFileSync(file, "utf8").replace(/\r?\n$/, "");
  } catch (err) {
    throw new ProvisioningError("usage", `cannot read ${what} ${file}: ${(err as Error).message}`, { file });
  }
}

class Context {
  readonly home: string;
  readonly store: FleetStore;
  constructor(
    readonly v: Values,
    readonly io: FleetIo,
    readonly deps: FleetDeps,
  ) {
    this.home = resolve((v.home as string | undefined) ?? io.env.IOT_FLEET_HOME ?? "fleet");
    // Connection settings repeat on every command; the environment saves typing them.
    if (v.server === undefined && io.env.IOT_FLEET_SERVER) v.server = io.env.IOT_FLEET_SERVER;
    if (v["ca-file"] === undefined && v.pin === undefined && io.env.IOT_FLEET_SERVER_CA_FILE)
      v["ca-file"] = io.env.IOT_FLEET_SERVER_CA_FILE;
    this.store = new FleetStore(join(this.home, "fleet.json"), deps.lockWaitMs);
  }
  get caDir(): string {
    return join(this.home, "ca");
  }
  now(): Date {
    return this.deps.now?.() ?? new Date();
  }
  progress(line: string): void {
    this.io.err(`iot-fleet: ${line}`);
  }
  passphrase(): string | undefined {
    const f = this.v["passphrase-file"] as string | undefined;
    if (f) return readSecretFile(f, "passphrase file");
    return this.io.env.IOT_FLEET_CA_PASSPHRASE || undefined;
  }
  loadCa() {
    const passphrase = this.passphrase();
    return loadCa({ dir: this.caDir, ...(passphrase ? { passphrase } : {}) });
  }
  timeoutMs(): number {
    const t = this.v.timeout as string | undefined;
    if (t === undefined) return 20_000;
    const s = Number(t);
    if (!(s > 0 && s <= 600)) throw usageError("--timeout must be 1..600 seconds");
    return s * 1000;
  }
  adminJid(): string | undefined {
    return (this.v["admin-jid"] as string | undefined) ?? this.io.env.IOT_FLEET_ADMIN_JID;
  }
  serverCaPem(): string | undefined {
    const f = this.v["ca-file"] as string | undefined;
    if (!f) return undefined;
    const pem = readSecretFile(f, "server CA file");
    try {
      certFingerprint(pem);
    } catch (err) {
      throw new ProvisioningError("usage", `--ca-file ${f} is not a PEM certificate`, { file: f }, { cause: err });
    }
    return `${pem}\n`;
  }
  pin(): string | undefined {
    const p = this.v.pin as string | undefined;
    if (p === undefined) return undefined;
    const n = normaliseFingerprint(p);
    if (!n) throw usageError("--pin must be 64 hex digits (SHA-256 of the server certificate)");
    return n;
  }
  async admin(): Promise<AdminSession> {
    const jid = this.adminJid();
    if (!jid) throw usageError("this command talks to the XMPP server: give --admin-jid (or $IOT_FLEET_ADMIN_JID)");
    const pwFile = (this.v["admin-password-file"] as string | undefined) ?? this.io.env.IOT_FLEET_ADMIN_PASSWORD_FILE;
    const password = pwFile ? readSecretFile(pwFile, "admin password file") : this.io.env.IOT_FLEET_ADMIN_PASSWORD;
    if (!password)
      throw usageError("no admin password: give --admin-password-file (or $IOT_FLEET_ADMIN_PASSWORD_FILE)");
    const connect = this.deps.connect ?? (await import("./admin-session.js")).connectAdmin;
    this.progress(`connecting as ${jid}${this.v.server ? ` to ${this.v.server}` : ""}...`);
    const o: Parameters<AdminConnector>[0] = { jid, password, timeoutMs: this.timeoutMs() };
    if (this.v.server) o.server = this.v.server as string;
    if (this.v["ca-file"]) o.caFile = this.v["ca-file"] as string;
    const pin = this.pin();
    if (pin) o.pinSha256 = pin;
    const s = await connect(o);
    this.progress("connected");
    return s;
  }
  async withAdmin<T>(fn: (s: AdminSession) => Promise<T>): Promise<T> {
    const s = await this.admin();
    try {
      return await fn(s);
    } finally {
      await s.close();
    }
  }
  print(obj: unknown, text: string): void {
    this.io.out(this.v.json ? JSON.stringify(obj) : text);
  }
  writeRevocations(extra?: string): string {
    const ca = this.loadCa();
    const data = this.store.read();
    const list = createRevocationList(
      { issuedAt: this.now().toISOString(), sequence: data.revocations.sequence, ...pick(data.revocations) },
      ca,
    );
    const text = `${JSON.stringify(list, null, 2)}\n`;
    const file = join(this.home, "revocations.json");
    writeFileAtomic(file, text, 0o644);
    if (extra) writeFileAtomic(resolve(extra), text, 0o644);
    return file;
  }
}

function pick(r: { bundleIds: string[]; certSerials: string[]; jids: string[] }) {
  return { bundleIds: r.bundleIds, certSerials: r.certSerials, jids: r.jids };
}

/** Moves global options written before the command word behind it: `--home D list` == `list --home D`. */
function hoistGlobals(argv: string[]): string[] {
  const leading: string[] = [];
  let i = 0;
  while (i < argv.length && argv[i]!.startsWith("--") && argv[i] !== "--help") {
    const name = argv[i]!.slice(2).split("=")[0]!;
    const spec = GLOBAL_OPTIONS[name as keyof typeof GLOBAL_OPTIONS];
    if (!spec) break;
    const takesValue = spec.type === "string" && !argv[i]!.includes("=");
    leading.push(...argv.slice(i, i + (takesValue ? 2 : 1)));
    i += takesValue ? 2 : 1;
  }
  const rest = argv.slice(i);
  const words = rest[0] === "ca" && rest[1] !== undefined && !rest[1].startsWith("-") ? 2 : rest.length > 0 ? 1 : 0;
  return [...rest.slice(0, words), ...leading, ...rest.slice(words)];
}

export async function main(rawArgv: string[], io: FleetIo, deps: FleetDeps = {}): Promise<number> {
  const argv = hoistGlobals(rawArgv);
  const [first, second] = argv;
  if (first === undefined || first === "--help" || first === "-h" || first === "help") {
    io.out(USAGE);
    return first === undefined ? EXIT.usage : EXIT.ok;
  }
  const command = first === "ca" && second !== undefined && !second.startsWith("-") ? `ca ${second}` : first;
  const rest = argv.slice(command.includes(" ") ? 2 : 1);
  const specific = COMMAND_OPTIONS[command as keyof typeof COMMAND_OPTIONS];
  if (!specific) {
    io.err(`iot-fleet: unknown command "${command}"\n\n${USAGE}`);
    return EXIT.usage;
  }
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: rest,
      options: { ...GLOBAL_OPTIONS, ...specific },
      allowPositionals: true,
      strict: true,
    }) as { values: Values; positionals: string[] });
  } catch (err) {
    io.err(`iot-fleet ${command}: ${(err as Error).message}\n\n${HELP[command]}`);
    return EXIT.usage;
  }
  if (values.help) {
    io.out(`${HELP[command]}\n\n${GLOBAL_HELP}`);
    return EXIT.ok;
  }
  const ctx = new Context(values, io, deps);
  try {
    switch (command) {
      case "ca init":
        return caInit(ctx, positionals);
      case "ca show":
        return caShow(ctx, positionals);
      case "provision":
        return await provision(ctx, positionals);
      case "rotate":
        return await rotate(ctx, positionals);
      case "revoke":
        return await revoke(ctx, positionals);
      case "revocations":
        return revocations(ctx, positionals);
      case "list":
        return await list(ctx, positionals);
    }
    return EXIT.usage;
  } catch (err) {
    const code = exitCodeFor(err);
    const errCode = (err as { code?: unknown } | undefined)?.code;
    const tag = typeof errCode === "string" ? ` [${errCode}]` : "";
    io.err(`iot-fleet ${command}: ${(err as Error).message ?? String(err)}${code === EXIT.usage ? "" : tag}`);
    return code;
  }
}

function noPositionals(p: string[], command: string): void {
  if (p.length > 0) throw usageError(`unexpected argument ${JSON.stringify(p[0])}`, command);
}

function oneDevice(p: string[], command: string): string {
  if (p.length !== 1) throw usageError("exactly one DEVICE-ID is needed", command);
  const id = p[0]!;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(id))
    throw usageError(`DEVICE-ID ${JSON.stringify(id)} must be 1-63 letters, digits, '.', '_' or '-'`, command);
  return id;
}

function caInit(ctx: Context, p: string[]): number {
  noPositionals(p, "ca init");
  const v = ctx.v;
  const days = v["valid-days"] === undefined ? 3650 : Number(v["valid-days"]);
  if (!Number.isInteger(days) || days < 1 || days > 36500) throw usageError("--valid-days must be 1..36500", "ca init");
  // Refuse before promising work: an existing CA is never overwritten without --force.
  if (v.force !== true && (existsSync(join(ctx.caDir, CA_KEY_FILE)) || existsSync(join(ctx.caDir, CA_CERT_FILE))))
    throw new ProvisioningError("ca_exists", `a fleet CA already exists in ${ctx.caDir}; refusing to overwrite it`, {
      dir: ctx.caDir,
    });
  const passphrase = ctx.passphrase();
  ctx.progress(`generating the RSA-3072 CA key in ${ctx.caDir} (a few seconds)...`);
  const info = initCa({
    dir: ctx.caDir,
    subject: {
      commonName: (v.cn as string | undefined) ?? "IoT fleet CA",
      ...(v.org ? { organization: v.org as string } : {}),
    },
    validDays: days,
    force: v.force === true,
    now: ctx.now(),
    ...(passphrase ? { passphrase } : {}),
    ...(ctx.deps.caKeyBits ? { keyBits: ctx.deps.caKeyBits } : {}),
  });
  ctx.print(
    { certFile: info.certFile, keyFile: info.keyFile, fingerprint: info.fingerprint, encrypted: !!passphrase },
    `fleet CA created\n  certificate  ${info.certFile}\n  key          ${info.keyFile} (0600${passphrase ? ", encrypted" : ", NOT encrypted: consider --passphrase-file"})\n  sha256       ${info.fingerprint}`,
  );
  return EXIT.ok;
}

function caShow(ctx: Context, p: string[]): number {
  noPositionals(p, "ca show");
  const info = loadCaCert(join(ctx.caDir, "ca.cert.pem"));
  ctx.print(
    { subject: info.subject, notBefore: info.notBefore, notAfter: info.notAfter, fingerprint: info.fingerprint },
    `subject   ${info.subject}\nvalid     ${info.notBefore.toISOString()} .. ${info.notAfter.toISOString()}\nsha256    ${info.fingerprint}`,
  );
  return EXIT.ok;
}

function deviceJid(ctx: Context, id: string): string {
  const v = ctx.v;
  if (v.jid) {
    if (!/^[^@/\s]+@[^@/\s]+$/.test(v.jid as string))
      throw usageError("--jid must be a bare JID (local@domain)", "provision");
    return v.jid as string;
  }
  const domain = (v.domain as string | undefined) ?? ctx.adminJid()?.split("@")[1]?.split("/")[0];
  if (!domain) throw usageError("give --jid, --domain or --admin-jid so the device JID can be formed", "provision");
  return `${id.toLowerCase()}@${domain}`;
}

function bundleServer(ctx: Context): BundleServer {
  const server = ctx.v.server as string | undefined;
  if (!server) throw usageError("--server HOST:PORT is needed (it is written into the bundle)", "provision");
  const m = /^\[([0-9a-fA-F:]+)\]:(\d+)$/.exec(server) ?? /^([^:[\]]+):(\d+)$/.exec(server);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || !(port > 0 && port < 65536)) throw usageError(`--server ${server} is not HOST:PORT`, "provision");
  const out: BundleServer = { host: m[1]!, port };
  const caPem = ctx.serverCaPem();
  const pin = ctx.pin();
  if (!caPem && !pin)
    ctx.progress("warning: neither --ca-file nor --pin: the device will trust the system CA store for the server");
  if (caPem) out.caCertPem = caPem;
  if (pin) out.pinSha256 = pin;
  if (ctx.v["tls-servername"]) out.tlsServername = ctx.v["tls-servername"] as string;
  return out;
}

async function provision(ctx: Context, p: string[]): Promise<number> {
  const id = oneDevice(p, "provision");
  const v = ctx.v;
  const out = v.out as string | undefined;
  if (!out) throw usageError("--out FILE is required", "provision");
  const modes = [v.invite === true, v["invite-token"] !== undefined, v["admin-password"] === true].filter(
    Boolean,
  ).length;
  if (modes > 1) throw usageError("choose one of --invite, --invite-token, --admin-password", "provision");
  const adminPath = v["admin-password"] === true;
  const validForMs = parseDuration((v["valid-for"] as string | undefined) ?? "7d");
  const jid = deviceJid(ctx, id);
  const server = bundleServer(ctx);
  const ca = ctx.loadCa();
  const csrPem = v.csr ? readSecretFile(v.csr as string, "CSR file") : undefined;
  const csr = csrPem ? readCsr(csrPem) : undefined;
  const operators = [...((v.operator as string[] | undefined) ?? [])];
  // The admin needs rotate-credentials on the device, and nothing more unless listed as an operator.
  const admin = ctx.adminJid()?.split("/")[0];
  const fleetAdmins = admin && !operators.includes(admin) ? [admin] : [];
  const now = ctx.now();

  // Refuse early (before creating anything on the server) when the store says no.
  const existing = ctx.store.read().devices[id];
  if (existing?.state === "revoked")
    throw new ProvisioningError("device_revoked", `device "${id}" was revoked; use a new device id`, { deviceId: id });
  if (existing?.state === "enrolled" && v.force !== true)
    throw new ProvisioningError(
      "device_exists",
      `device "${id}" is already enrolled; pass --force to issue a new bundle`,
      {
        deviceId: id,
      },
    );

  let credential: BundleCredential;
  let path: CredentialPath;
  if (v["invite-token"] !== undefined) {
    credential = { type: "invite", token: v["invite-token"] as string };
    path = "invite";
  } else if (!adminPath) {
    const domain = jid.split("@")[1]!;
    const invite = await ctx.withAdmin(async ({ session }) => {
      ctx.progress(`creating a one-time account invite on ${domain}...`);
      return createAccountInvite(session, domain, { timeoutMs: ctx.timeoutMs() });
    });
    credential = { type: "invite", token: invite.token, uri: invite.uri };
    path = "invite";
    if (invite.expires && Date.parse(invite.expires) < now.getTime() + validForMs)
      ctx.progress(`note: the server's invite expires at ${invite.expires}, before the bundle does`);
  } else {
    const password = generatePassword();
    await ctx.withAdmin(async ({ session }) => {
      ctx.progress(`creating account ${jid} (XEP-0133 add-user)...`);
      await addUser(session, jid, password, { timeoutMs: ctx.timeoutMs() });
    });
    if (csr) {
      credential = { type: "password-sealed", ...sealToPublicKey(csr.publicKeyPem, password) };
      path = "admin-password-sealed";
    } else {
      ctx.progress(
        "warning: no --csr: the password is in clear inside the (signed) bundle; protect and delete the file",
      );
      credential = { type: "password", password };
      path = "admin-password";
    }
  }

  let clientCert: { certPem: string; serial: string } | undefined;
  if (csrPem) {
    const days = v["cert-days"] === undefined ? 365 : Number(v["cert-days"]);
    if (!Number.isInteger(days) || days < 1 || days > 3650)
      throw usageError("--cert-days must be 1..3650", "provision");
    const cert = signDeviceCsr(ca, csrPem, { jid, validDays: days, now });
    clientCert = { certPem: cert.certPem, serial: cert.serial };
  }
  const bundle = createBundle(
    {
      device: { id, jid },
      server,
      pubsub: v.pubsub ? { service: v.pubsub as string } : {},
      operators,
      fleetAdmins,
      credential,
      ...(clientCert ? { clientCert } : {}),
      validForMs,
      now,
    },
    ca,
  );
  const outFile = resolve(out);
  writeFileAtomic(outFile, serialiseBundle(bundle), 0o600);
  await ctx.store.update((data) =>
    addProvisioned(
      data,
      {
        id,
        jid,
        credentialPath: path,
        bundleId: bundle.payload.bundleId,
        ...(v.resource ? { resource: v.resource as string } : {}),
        ...(clientCert ? { certSerial: clientCert.serial } : {}),
      },
      now,
      { allowReprovision: v.force === true },
    ),
  );
  ctx.print(
    {
      deviceId: id,
      jid,
      bundle: outFile,
      bundleId: bundle.payload.bundleId,
      credentialPath: path,
      notAfter: bundle.payload.notAfter,
    },
    `provisioned ${id} (${jid})\n  bundle      ${outFile} (0600)\n  credential  ${describeCredentialPath(path)}\n  valid until ${bundle.payload.notAfter}\n  on device:  iot-agent enroll ${out} --fleet-ca ca.cert.pem`,
  );
  return EXIT.ok;
}

async function rotate(ctx: Context, p: string[]): Promise<number> {
  const id = oneDevice(p, "rotate");
  const device = getDevice(ctx.store.read(), id);
  if (device.state === "revoked")
    throw new ProvisioningError("device_revoked", `device "${id}" is revoked`, { deviceId: id });
  const now = ctx.now();
  if (ctx.v["admin-reset"]) {
    const out = ctx.v.out as string | undefined;
    if (!out) throw usageError("--admin-reset needs --out FILE for the new bundle", "rotate");
    const ca = ctx.loadCa();
    const server = bundleServer(ctx);
    const password = generatePassword();
    await ctx.withAdmin(async ({ session }) => {
      ctx.progress(`resetting the password of ${device.jid} (XEP-0133 change-user-password)...`);
      await changeUserPassword(session, device.jid, password, { timeoutMs: ctx.timeoutMs() });
    });
    const csr = ctx.v.csr ? readCsr(readSecretFile(ctx.v.csr as string, "CSR file")) : undefined;
    const credential: BundleCredential = csr
      ? { type: "password-sealed", ...sealToPublicKey(csr.publicKeyPem, password) }
      : { type: "password", password };
    const admin = ctx.adminJid()?.split("/")[0];
    const bundle = createBundle(
      {
        device: { id, jid: device.jid },
        server,
        pubsub: ctx.v.pubsub ? { service: ctx.v.pubsub as string } : {},
        operators: [],
        fleetAdmins: admin ? [admin] : [],
        credential,
        validForMs: parseDuration((ctx.v["valid-for"] as string | undefined) ?? "7d"),
        now,
      },
      ca,
    );
    writeFileAtomic(resolve(out), serialiseBundle(bundle), 0o600);
    await ctx.store.update((data) => {
      const d = markRotated(data, id, now);
      d.bundleIds.push(bundle.payload.bundleId);
      d.credentialPath = csr ? "admin-password-sealed" : "admin-password";
    });
    ctx.print(
      { deviceId: id, reset: true, bundle: resolve(out), bundleId: bundle.payload.bundleId },
      `password of ${device.jid} reset; re-enrol the device with ${out} (iot-agent enroll --force)`,
    );
    return EXIT.ok;
  }
  const full = `${device.jid}/${device.resource}`;
  const result = await ctx.withAdmin(async ({ session }) => {
    ctx.progress(`asking ${full} to rotate its credentials (ad-hoc rotate-credentials)...`);
    return requestDeviceRotation(session, full, { timeoutMs: ctx.timeoutMs() });
  });
  await ctx.store.update((data) => markRotated(data, id, now));
  const note = result.notes.map((n) => n.text).join("; ");
  ctx.print({ deviceId: id, rotated: true, note }, `${id}: ${note || "rotated"}`);
  return EXIT.ok;
}

async function revoke(ctx: Context, p: string[]): Promise<number> {
  const id = oneDevice(p, "revoke");
  const now = ctx.now();
  const device = getDevice(ctx.store.read(), id);
  // Record first: even if the server is unreachable, the revocation list must name the device.
  await ctx.store.update((data) => {
    if (data.devices[id]?.state !== "revoked") markRevoked(data, id, now);
  });
  const listFile = ctx.writeRevocations(ctx.v.export as string | undefined);
  ctx.progress(`revocation recorded; signed list written to ${listFile}`);
  if (ctx.v["local-only"]) {
    ctx.print(
      { deviceId: id, revoked: true, account: "untouched" },
      `${id} revoked locally (account not deleted: --local-only)`,
    );
    return EXIT.ok;
  }
  let how = "deleted";
  await ctx.withAdmin(async ({ session }) => {
    const opts = { timeoutMs: ctx.timeoutMs() };
    if (ctx.v.disable) {
      try {
        ctx.progress(`disabling ${device.jid} (XEP-0133 disable-user)...`);
        await disableUser(session, device.jid, opts);
        how = "disabled";
      } catch (err) {
        if (!isProvisioningError(err, "adhoc_unsupported")) throw err;
        ctx.progress("the server has no disable-user; deleting the account instead");
      }
    }
    try {
      await endUserSession(session, device.jid, opts);
    } catch {
      // Best effort: deletion also closes sessions on Prosody and ejabberd; an absent session is fine.
    }
    if (how === "deleted") {
      ctx.progress(`deleting ${device.jid} (XEP-0133 delete-user)...`);
      try {
        await deleteUser(session, device.jid, opts);
      } catch (err) {
        // Re-running revoke after a successful delete finds no account: that is the goal reached.
        if (!(isProvisioningError(err, "adhoc_failed") && device.state === "revoked")) throw err;
        how = "already deleted";
      }
    }
  });
  ctx.print({ deviceId: id, revoked: true, account: how }, `${id} revoked: account ${device.jid} ${how}`);
  return EXIT.ok;
}

function revocations(ctx: Context, p: string[]): number {
  noPositionals(p, "revocations");
  const out = ctx.v.out as string | undefined;
  if (!out) throw usageError("--out FILE is required", "revocations");
  const file = ctx.writeRevocations(out);
  ctx.print({ file: resolve(out), home: file }, `revocation list written to ${resolve(out)}`);
  return EXIT.ok;
}

async function list(ctx: Context, p: string[]): Promise<number> {
  noPositionals(p, "list");
  if (ctx.v.online) {
    const domains = new Set(Object.values(ctx.store.read().devices).map((d) => d.jid.split("@")[1]!));
    const online: string[] = [];
    await ctx.withAdmin(async ({ session }) => {
      for (const domain of domains) {
        ctx.progress(`asking ${domain} for its online users...`);
        online.push(...(await onlineUsers(session, domain, { timeoutMs: ctx.timeoutMs() })));
      }
    });
    await ctx.store.update((data) => recordSeen(data, online, ctx.now()));
  }
  const devices = Object.values(ctx.store.read().devices).sort((a, b) => a.id.localeCompare(b.id));
  if (ctx.v.json) {
    ctx.io.out(JSON.stringify(devices));
    return EXIT.ok;
  }
  const rows = [["DEVICE", "JID", "STATE", "CREDENTIAL", "LAST SEEN", "UPDATED"]];
  for (const d of devices)
    rows.push([d.id, d.jid, d.state, describeCredentialPath(d.credentialPath), d.lastSeen ?? "-", d.updatedAt]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows)
    ctx.io.out(
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    );
  if (devices.length === 0) ctx.io.out("(no devices yet: iot-fleet provision DEVICE-ID ...)");
  return EXIT.ok;
}

/**
 * How a person reads a credential path: the words of docs/provisioning.md and of the bundle's
 * credential type ("invite", "password-sealed", "password"). --json keeps the store's values.
 */
export function describeCredentialPath(path: CredentialPath): string {
  switch (path) {
    case "invite":
      return "invite";
    case "admin-password-sealed":
      return "admin path, password-sealed";
    case "admin-password":
      return "admin path, password in clear";
  }
}
