/**
 * `iot-agent enroll`: turns a signed enrolment bundle into a working device.
 *   1. verify the bundle against the fleet CA the device already trusts (file or pin), and the
 *      revocation list when one is given;
 *   2. obtain the password: generate one and register the account with the invite token (the
 *      secret never leaves the device), or unseal/read the admin-created one;
 *   3. write credentials (dir 0700, secrets 0600) and the agent config (YAML, no secret inside);
 *   4. connect once with the real session to prove it works.
 * Nothing secret is ever logged: progress lines name steps and files, never values.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { stringify } from "yaml";
import { isAgentError } from "../../kernel/errors.js";
import type { Logger } from "../../kernel/log.js";
import { silentLogger } from "../../kernel/log.js";
import { type BundlePayload, parseBundleText, verifyBundle } from "../bundle.js";
import { parseCaCert } from "../ca.js";
import { openSealed } from "../device-key.js";
import { ProvisioningError } from "../errors.js";
import { writeFileAtomic } from "../fsutil.js";
import { registerAccount, type RegisterOptions } from "../register.js";
import { verifyRevocationList } from "../revocation.js";
import type { TrustAnchor } from "../signed.js";
import { NODE_ROTATE_CREDENTIALS } from "../xmpp-admin.js";
import type { ConnectCheck } from "./connect-check.js";
import {
  CLIENT_CERT_FILE,
  CredentialStore,
  DEVICE_KEY_FILE,
  ENROLMENT_FILE,
  FLEET_CA_FILE,
  generatePassword,
  PASSWORD_FILE,
  SERVER_CA_FILE,
} from "./credentials.js";

export interface EnrollOptions {
  /** The bundle file, or the parsed bundle. */
  bundleFile?: string;
  bundle?: unknown;
  /** Trust anchor: the fleet CA certificate file, or its SHA-256 fingerprint. One is required. */
  fleetCaFile?: string;
  fleetCaFingerprint?: string;
  /** Signed revocation list (iot-fleet revoke --export); a listed bundle is refused. */
  revocationsFile?: string;
  /** Where to write the agent config. */
  configFile: string;
  /** device.dataDir of the written config; credentials go to <dataDir>/credentials. */
  dataDir: string;
  /** Overwrite an existing config / enrolment. */
  force?: boolean;
  /** Skip the connection check (e.g. enrolling an image offline). Registration still needs the server. */
  connect?: boolean;
  timeoutMs?: number;
  now?: Date;
  log?: Logger;
  /** One line per step, for the CLI. */
  progress?: (line: string) => void;
  /** Dependencies, injectable for tests. */
  register?: (o: RegisterOptions) => Promise<void>;
  connectCheck?: ConnectCheck;
}

export interface EnrollResult {
  deviceId: string;
  jid: string;
  bundleId: string;
  credentialPath: BundlePayload["credential"]["type"];
  configFile: string;
  credentialsDir: string;
  /** Full JID bound during the connection check, when it ran. */
  boundJid?: string;
}

export const ENROLL_USAGE = `Usage: iot-agent enroll BUNDLE --fleet-ca FILE|--fleet-ca-fingerprint SHA256 [options]
       iot-agent enroll --make-csr --jid JID [--data-dir DIR]

Verifies the enrolment bundle made by 'iot-fleet provision' against the fleet CA, obtains the
account password (registers the account with the bundle's invite token, or unseals the
admin-created password with this device's key), writes credentials and the agent config, and
connects once to prove it works.

Options:
      --fleet-ca FILE              Fleet CA certificate this device trusts (from the image).
      --fleet-ca-fingerprint HEX   ...or its SHA-256 fingerprint (64 hex digits, colons allowed).
      --revocations FILE           Signed revocation list; a revoked bundle is refused.
  -c, --config FILE                Agent config to write (default /etc/iot-agent/agent.yaml).
      --data-dir DIR               Agent data dir (default /var/lib/iot-agent); credentials in DIR/credentials.
      --force                      Replace an existing config and credentials.
      --no-connect                 Skip the connection check.
      --timeout SECONDS            Per network step (default 20).
      --make-csr                   Only create the device key (0600) and a CSR to give the fleet admin
                                   (iot-fleet provision --csr FILE): the admin password is then sealed to
                                   this key, and a client certificate is issued.
      --jid JID                    The device JID for --make-csr.
  -h, --help                       This help.

Exit codes: 0 enrolled, 1 failure (files), 2 usage, 4 bundle refused (tampered, wrong CA,
expired, revoked, sealed to another key), 5 server unreachable or refused (registration, invite
token already used or expired, login check).`;

function trustFrom(o: EnrollOptions): TrustAnchor {
  if (o.fleetCaFile) {
    let pem: string;
    try {
      pem = readFileSync(o.fleetCaFile, "utf8");
    } catch (err) {
      throw new ProvisioningError(
        "bundle_no_trust_anchor",
        `cannot read fleet CA ${o.fleetCaFile}: ${(err as Error).message}`,
        {
          file: o.fleetCaFile,
        },
      );
    }
    return { caCertPem: pem };
  }
  if (o.fleetCaFingerprint) return { caFingerprint: o.fleetCaFingerprint };
  // The bundle carries its CA certificate, but trusting that would let anyone sign a bundle.
  throw new ProvisioningError(
    "bundle_no_trust_anchor",
    "no fleet CA to verify the bundle against: pass --fleet-ca FILE or --fleet-ca-fingerprint HEX",
  );
}

function agentConfig(p: BundlePayload, o: EnrollOptions, creds: CredentialStore, caFile: string | undefined): unknown {
  const xmpp: Record<string, unknown> = {
    jid: p.device.jid,
    passwordFile: creds.passwordFile,
    server: `${p.server.host.includes(":") ? `[${p.server.host}]` : p.server.host}:${p.server.port}`,
  };
  if (caFile) xmpp.caFile = caFile;
  if (p.clientCert && creds.read(DEVICE_KEY_FILE) !== undefined) {
    // SASL EXTERNAL where the server accepts the fleet's certificates; the password stays the fallback.
    xmpp.clientCertFile = creds.path(CLIENT_CERT_FILE);
    xmpp.clientKeyFile = creds.path(DEVICE_KEY_FILE);
  }
  if (p.server.pinSha256) xmpp.pinSha256 = p.server.pinSha256;
  if (p.server.tlsServername) xmpp.tlsServername = p.server.tlsServername;
  if (p.server.directTls) xmpp.directTls = true;
  const pubsub: Record<string, unknown> = {};
  if (p.pubsub.service) pubsub.service = p.pubsub.service;
  if (p.pubsub.nodePrefix !== undefined) pubsub.nodePrefix = p.pubsub.nodePrefix;
  return {
    device: { id: p.device.id, dataDir: resolve(o.dataDir) },
    xmpp,
    operators: [
      ...p.operators.map((jid) => ({ jid, commands: ["*"] })),
      ...(p.fleetAdmins ?? [])
        .filter((jid) => !p.operators.includes(jid))
        .map((jid) => ({ jid, commands: [NODE_ROTATE_CREDENTIALS] })),
    ],
    pubsub,
  };
}

/** Registration answers after which the server certainly created no account. */
const DEFINITE_REFUSALS = new Set(["invite_invalid", "register_refused", "register_conflict"]);

export async function enroll(o: EnrollOptions): Promise<EnrollResult> {
  const log = (o.log ?? silentLogger).child({ component: "enroll" });
  const progress = o.progress ?? (() => {});
  const now = o.now ?? new Date();
  const timeoutMs = o.timeoutMs ?? 20_000;

  // 1. verify
  const trust = trustFrom(o);
  let raw = o.bundle;
  if (raw === undefined) {
    if (!o.bundleFile) throw new ProvisioningError("usage", "no bundle given");
    let text: string;
    try {
      text = readFileSync(o.bundleFile, "utf8");
    } catch (err) {
      throw new ProvisioningError("enroll_io", `cannot read bundle ${o.bundleFile}: ${(err as Error).message}`, {
        file: o.bundleFile,
      });
    }
    raw = parseBundleText(text, o.bundleFile);
  }
  let revoked: string[] = [];
  if (o.revocationsFile) {
    const list = verifyRevocationList(
      parseBundleText(readFileSync(o.revocationsFile, "utf8"), o.revocationsFile),
      trust,
    );
    revoked = list.bundleIds;
  }
  const p = verifyBundle(raw, trust, now, { revokedBundleIds: revoked });
  progress(`bundle ${p.bundleId} verified: device ${p.device.id} (${p.device.jid}), valid until ${p.notAfter}`);
  log.info("bundle verified", { bundleId: p.bundleId, deviceId: p.device.id, jid: p.device.jid });

  const configFile = resolve(o.configFile);
  const creds = new CredentialStore(resolve(o.dataDir, "credentials"));
  if (!o.force && existsSync(configFile))
    throw new ProvisioningError(
      "enroll_io",
      `${configFile} exists: this device looks enrolled (use --force to replace it)`,
      {
        file: configFile,
      },
    );
  // What this attempt creates, so a refusal that leaves the device unenrolled can take it back
  // (docs: a refused enrolment writes nothing). Files that were there before are never removed.
  const dirExisted = existsSync(creds.dir);
  const created = [SERVER_CA_FILE, FLEET_CA_FILE, CLIENT_CERT_FILE, PASSWORD_FILE].filter(
    (f) => !existsSync(creds.path(f)),
  );
  creds.init();
  const undo = () => {
    for (const f of created) rmSync(creds.path(f), { force: true });
    if (!dirExisted)
      try {
        rmdirSync(creds.dir); // only if empty: the device key of --make-csr lives there too
      } catch {
        // not empty (a device key from --make-csr, files of an earlier run): keep it
      }
  };

  // 2. server trust material
  let caFile: string | undefined;
  if (p.server.caCertPem) caFile = creds.writePublic(SERVER_CA_FILE, p.server.caCertPem);
  const fleetCaPem =
    "caCertPem" in trust ? trust.caCertPem : (raw as { signature: { caCertPem: string } }).signature.caCertPem;
  parseCaCert(fleetCaPem, "fleet CA");
  creds.writePublic(FLEET_CA_FILE, fleetCaPem);
  if (p.clientCert) creds.writePublic(CLIENT_CERT_FILE, p.clientCert.certPem);

  // 3. password
  const [local, domain] = p.device.jid.split("@") as [string, string];
  switch (p.credential.type) {
    case "invite": {
      const password = generatePassword();
      // Written before registering: if we crash after the server created the account, we still know it.
      creds.writePassword(password);
      progress(`registering ${p.device.jid} on ${p.server.host}:${p.server.port} with the invite token...`);
      try {
        await (o.register ?? registerAccount)({
          domain,
          host: p.server.host,
          port: p.server.port,
          tls: {
            servername: p.server.tlsServername ?? domain,
            ...(p.server.caCertPem ? { ca: p.server.caCertPem } : {}),
            ...(p.server.pinSha256 ? { pinSha256: p.server.pinSha256.replace(/:/g, "").toLowerCase() } : {}),
          },
          directTls: p.server.directTls ?? false,
          timeoutMs,
          username: local,
          password,
          token: p.credential.token,
        });
      } catch (err) {
        // A definite refusal means no account was created: nothing of this attempt is worth
        // keeping. Anything else (timeout, lost link) may have created it: keep the password.
        if (isAgentError(err) && DEFINITE_REFUSALS.has(err.code)) undo();
        throw err;
      }
      progress("account registered; its password was generated on this device");
      break;
    }
    case "password-sealed": {
      const key = creds.read(DEVICE_KEY_FILE);
      if (!key)
        throw new ProvisioningError(
          "bundle_key_mismatch",
          `the bundle's password is sealed to a device key, but ${creds.path(DEVICE_KEY_FILE)} does not exist (run enroll --make-csr on this device first)`,
        );
      creds.writePassword(openSealed(key, p.credential));
      progress("admin-created password unsealed with the device key");
      break;
    }
    case "password":
      creds.writePassword(p.credential.password);
      progress("admin-created password stored (bundle carried it in clear: delete the bundle file now)");
      break;
  }
  creds.writeSecret(
    ENROLMENT_FILE,
    `${JSON.stringify({ bundleId: p.bundleId, deviceId: p.device.id, jid: p.device.jid, enrolledAt: now.toISOString(), fleetCaFingerprint: parseCaCert(fleetCaPem).fingerprint, credentialPath: p.credential.type, clientCertSerial: p.clientCert?.serial }, null, 2)}\n`,
  );

  // 4. config
  // Not ensurePrivateDir: the config may live in a shared directory whose mode is not ours to change.
  mkdirSync(dirname(configFile), { recursive: true, mode: 0o755 });
  writeFileAtomic(configFile, stringify(agentConfig(p, o, creds, caFile)), 0o600);
  progress(`wrote ${configFile}`);

  const result: EnrollResult = {
    deviceId: p.device.id,
    jid: p.device.jid,
    bundleId: p.bundleId,
    credentialPath: p.credential.type,
    configFile,
    credentialsDir: creds.dir,
  };
  if (o.connect !== false) {
    progress(`connecting to ${p.server.host}:${p.server.port} to check the login...`);
    const check = o.connectCheck ?? (await import("./connect-check.js")).connectOnce;
    const { jid } = await check(configFile, { timeoutMs, log });
    result.boundJid = jid;
    progress(`online as ${jid}: enrolment complete`);
  }
  log.info("enrolled", { deviceId: p.device.id, jid: p.device.jid, credentialPath: p.credential.type });
  return result;
}
