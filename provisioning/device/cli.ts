/**
 * `iot-agent enroll ...`: argument handling for the device side. agent/cli.ts dispatches here:
 *   case "enroll": return enrollMain(rest, io);
 */
import { parseArgs } from "node:util";
import { createLogger } from "../../kernel/log.js";
import { createCsr, generateDeviceKey } from "../device-key.js";
import { ProvisioningError } from "../errors.js";
import { EXIT, exitCodeFor } from "../exit-codes.js";
import { CredentialStore, DEVICE_CSR_FILE, DEVICE_KEY_FILE } from "./credentials.js";
import { ENROLL_USAGE, enroll, type EnrollOptions } from "./enroll.js";

export { ENROLL_USAGE };

export interface EnrollIo {
  out: (s: string) => void;
  err: (s: string) => void;
  env?: NodeJS.ProcessEnv;
}

const OPTIONS = {
  help: { type: "boolean", short: "h" },
  "fleet-ca": { type: "string" },
  "fleet-ca-fingerprint": { type: "string" },
  revocations: { type: "string" },
  config: { type: "string", short: "c" },
  "data-dir": { type: "string" },
  force: { type: "boolean" },
  "no-connect": { type: "boolean" },
  timeout: { type: "string" },
  "make-csr": { type: "boolean" },
  jid: { type: "string" },
} as const;

/** Runs `iot-agent enroll` with `args` (after the word "enroll"); returns the exit status. */
export async function enrollMain(args: string[], io: EnrollIo, deps: Partial<EnrollOptions> = {}): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true }));
  } catch (err) {
    io.err(`iot-agent enroll: ${(err as Error).message}\n\n${ENROLL_USAGE}`);
    return EXIT.usage;
  }
  if (values.help) {
    io.out(ENROLL_USAGE);
    return EXIT.ok;
  }
  const usage = (msg: string) => {
    io.err(`iot-agent enroll: ${msg}\n\n${ENROLL_USAGE}`);
    return EXIT.usage;
  };
  const dataDir = (values["data-dir"] as string | undefined) ?? "/var/lib/iot-agent";
  try {
    if (values["make-csr"]) {
      if (typeof values.jid !== "string" || !/^[^@/\s]+@[^@/\s]+$/.test(values.jid))
        return usage("--make-csr needs --jid with the device's bare JID");
      const creds = new CredentialStore(`${dataDir}/credentials`);
      if (creds.read(DEVICE_KEY_FILE) && !values.force)
        throw new ProvisioningError("enroll_io", `${creds.path(DEVICE_KEY_FILE)} exists (use --force to replace it)`);
      const key = generateDeviceKey();
      creds.writeSecret(DEVICE_KEY_FILE, key.privateKeyPem);
      const csrFile = creds.writePublic(DEVICE_CSR_FILE, createCsr(key.privateKeyPem, values.jid));
      io.out(csrFile);
      io.err(`device key written (0600); give ${csrFile} to the fleet admin: iot-fleet provision ... --csr FILE`);
      return EXIT.ok;
    }
    if (positionals.length !== 1) return usage("exactly one BUNDLE file is needed");
    // Not a usage slip: without a trust anchor the bundle cannot be verified (exit 4, as documented).
    if (!values["fleet-ca"] && !values["fleet-ca-fingerprint"])
      throw new ProvisioningError(
        "bundle_no_trust_anchor",
        "no fleet CA to verify the bundle against: pass --fleet-ca FILE or --fleet-ca-fingerprint HEX",
      );
    let timeoutMs: number | undefined;
    if (values.timeout !== undefined) {
      const s = Number(values.timeout);
      if (!(s > 0 && s <= 600)) return usage("--timeout must be 1..600 seconds");
      timeoutMs = s * 1000;
    }
    const log = createLogger({ level: "warn", write: (l) => io.err(l.replace(/\n$/, "")) });
    const opts: EnrollOptions = {
      ...deps,
      bundleFile: positionals[0]!,
      configFile: (values.config as string | undefined) ?? "/etc/iot-agent/agent.yaml",
      dataDir,
      log,
      progress: (line) => io.err(`enroll: ${line}`),
    };
    if (values["fleet-ca"]) opts.fleetCaFile = values["fleet-ca"] as string;
    if (values["fleet-ca-fingerprint"]) opts.fleetCaFingerprint = values["fleet-ca-fingerprint"] as string;
    if (values.revocations) opts.revocationsFile = values.revocations as string;
    if (values.force) opts.force = true;
    if (values["no-connect"]) opts.connect = false;
    if (timeoutMs !== undefined) opts.timeoutMs = timeoutMs;
    const r = await enroll(opts);
    io.out(
      JSON.stringify({
        enrolled: r.deviceId,
        jid: r.jid,
        boundJid: r.boundJid,
        config: r.configFile,
        bundleId: r.bundleId,
      }),
    );
    return EXIT.ok;
  } catch (err) {
    const code = exitCodeFor(err);
    io.err(`iot-agent enroll: ${(err as Error).message}${isCoded(err) ? ` [${err.code}]` : ""}`);
    return code;
  }
}

function isCoded(err: unknown): err is { code: string } {
  return typeof (err as { code?: unknown })?.code === "string";
}
