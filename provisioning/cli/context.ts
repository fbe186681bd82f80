/**
 * One `iot-fleet` run: its I/O, the fleet home and store, and the options every command reads the
 * same way (CA passphrase, admin connection, the server written into bundles). Files named by
 * options are read only when a command gets to the step that needs them.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { AdminConnector } from "../admin-session.js";
import type { BundleServer } from "../bundle.js";
import { certFingerprint, type FleetCa, loadCa } from "../ca.js";
import { ProvisioningError } from "../errors.js";
import { FleetStore } from "../store.js";
import type { AccountConnector } from "../usecases/accounts.js";
import type { RevocationOutput } from "../usecases/revocations.js";
import type { FleetServices } from "../usecases/services.js";
import { xmppAccounts } from "../xmpp-accounts.js";
import { xmppDevices } from "../xmpp-devices.js";
import { type Options, parsePin, parseServerAddress, parseTimeout, usageError } from "./args.js";

export interface FleetIo {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
  /** Raw writes to a terminal's stderr (a progress bar); absent when stderr is not a terminal. */
  ttyErr?: (s: string) => void;
  /** Runs `fn` on Ctrl-C / SIGTERM until the returned function is called. */
  onInterrupt?: (fn: () => void) => () => void;
}

export interface FleetDeps {
  /** Opens the admin XMPP session; default: xmpp's XmppSession (admin-session.ts). */
  connect?: AdminConnector;
  now?: () => Date;
  /** RSA size for `ca init`; tests pass 2048 to stay fast. */
  caKeyBits?: number;
  /** How long to wait for another run's store lock (default 30 s). */
  lockWaitMs?: number;
}

export function readSecretFile(file: string, what: string): string {
  try {
    return readFileSync(file, "utf8").replace(/\r?\n$/, "");
  } catch (err) {
    throw new ProvisioningError("usage", `cannot read ${what} ${file}: ${(err as Error).message}`, { file });
  }
}

export class Context {
  readonly home: string;
  readonly store: FleetStore;
  constructor(
    readonly opts: Options,
    readonly io: FleetIo,
    readonly deps: FleetDeps,
  ) {
    this.home = resolve(opts.string("home") ?? io.env.IOT_FLEET_HOME ?? "fleet");
    // Connection settings repeat on every command; the environment saves typing them.
    opts.fallback("server", io.env.IOT_FLEET_SERVER);
    if (!opts.given("pin")) opts.fallback("ca-file", io.env.IOT_FLEET_SERVER_CA_FILE);
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

  /** The result: JSON with --json, the human text otherwise. */
  print(obj: unknown, text: string): void {
    this.io.out(this.opts.flag("json") ? JSON.stringify(obj) : text);
  }

  passphrase(): string | undefined {
    const f = this.opts.string("passphrase-file");
    if (f) return readSecretFile(f, "passphrase file");
    return this.io.env.IOT_FLEET_CA_PASSPHRASE || undefined;
  }

  loadCa(): FleetCa {
    const passphrase = this.passphrase();
    return loadCa({ dir: this.caDir, ...(passphrase ? { passphrase } : {}) });
  }

  adminJid(): string | undefined {
    return this.opts.string("admin-jid") ?? this.io.env.IOT_FLEET_ADMIN_JID;
  }

  services(): FleetServices {
    return { store: this.store, now: () => this.now(), progress: (l) => this.progress(l), connect: this.connector() };
  }

  revocationOutput(exportFile?: string): RevocationOutput {
    return {
      loadCa: () => this.loadCa(),
      file: join(this.home, "revocations.json"),
      ...(exportFile ? { exportFile: resolve(exportFile) } : {}),
    };
  }

  /** The server as written into bundles: address, and how the device is to trust its certificate. */
  bundleServer(): BundleServer {
    const server = this.opts.string("server");
    if (!server) throw usageError("--server HOST:PORT is needed (it is written into the bundle)", "provision");
    const out: BundleServer = parseServerAddress(server);
    const caPem = this.serverCaPem();
    const pin = parsePin(this.opts.string("pin"));
    if (!caPem && !pin)
      this.progress("warning: neither --ca-file nor --pin: the device will trust the system CA store for the server");
    if (caPem) out.caCertPem = caPem;
    if (pin) out.pinSha256 = pin;
    const servername = this.opts.string("tls-servername");
    if (servername) out.tlsServername = servername;
    return out;
  }

  private serverCaPem(): string | undefined {
    const f = this.opts.string("ca-file");
    if (!f) return undefined;
    const pem = readSecretFile(f, "server CA file");
    try {
      certFingerprint(pem);
    } catch (err) {
      throw new ProvisioningError("usage", `--ca-file ${f} is not a PEM certificate`, { file: f }, { cause: err });
    }
    return `${pem}\n`;
  }

  /** Logs in as the fleet admin over XMPP when a use case first needs the server. */
  private connector(): AccountConnector {
    return async () => {
      const jid = this.adminJid();
      if (!jid) throw usageError("this command talks to the XMPP server: give --admin-jid (or $IOT_FLEET_ADMIN_JID)");
      const pwFile = this.opts.string("admin-password-file") ?? this.io.env.IOT_FLEET_ADMIN_PASSWORD_FILE;
      const password = pwFile ? readSecretFile(pwFile, "admin password file") : this.io.env.IOT_FLEET_ADMIN_PASSWORD;
      if (!password)
        throw usageError("no admin password: give --admin-password-file (or $IOT_FLEET_ADMIN_PASSWORD_FILE)");
      const connect = this.deps.connect ?? (await import("../admin-session.js")).connectAdmin;
      const server = this.opts.string("server");
      this.progress(`connecting as ${jid}${server ? ` to ${server}` : ""}...`);
      const timeoutMs = parseTimeout(this.opts.string("timeout"));
      const o: Parameters<AdminConnector>[0] = { jid, password, timeoutMs };
      if (server) o.server = server;
      const caFile = this.opts.string("ca-file");
      if (caFile) o.caFile = caFile;
      const pin = parsePin(this.opts.string("pin"));
      if (pin) o.pinSha256 = pin;
      const admin = await connect(o);
      this.progress("connected");
      return {
        accounts: xmppAccounts(admin.session, { timeoutMs }),
        devices: xmppDevices(admin.session, { timeoutMs }),
        upload: async (service, file) => {
          const { uploadFile } = await import("../release/upload.js");
          const ca = this.serverCaPem();
          return uploadFile({ session: admin.session, service, file, ...(ca ? { ca } : {}) });
        },
        close: () => admin.close(),
      };
    };
  }
}
