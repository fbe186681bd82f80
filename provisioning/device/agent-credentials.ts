/**
 * What the running agent does with an enrolled device's credentials, in one feature the
 * composition root (agent/main.ts) starts and stops:
 *   - at start, refuses to run when the device is on the fleet's revocation list
 *     (provisioning.revocationListFile; revocation-check.ts, loaded only when configured because it
 *     pulls in node-forge);
 *   - resolves a rotation a crash interrupted, before the first login (login-recovery.ts);
 *   - offers the `rotate-credentials` command (rotation.ts);
 *   - rotates by itself when provisioning.selfRotationIntervalMs is set.
 * A device is "enrolled" when xmpp.passwordFile is the `password` file of a credential directory
 * (what `iot-agent enroll` writes). Others get none of this.
 */
import { statSync } from "node:fs";
import { basename, dirname, isAbsolute, resolve } from "node:path";
import type { CommandDefinition } from "../../agent/commands/registry.js";
import { ConfigError } from "../../kernel/errors.js";
import { type Logger, silentLogger } from "../../kernel/log.js";
import { realTimers, type Timers } from "../../kernel/timers.js";
import type { Infer } from "../../kernel/schema-dsl.js";
import type { provisioningConfigSchema } from "../config.js";
import type { PasswordUpdatable, SessionPort } from "../session-port.js";
import { CredentialStore, PASSWORD_FILE } from "./credentials.js";
import { LoginRecovery, type RecoverableSession, type RecoveryOutcome } from "./login-recovery.js";
import type { RevocationCheckResult } from "./revocation-check.js";
import { rotationCommand, startPeriodicRotation } from "./rotation.js";

export type ProvisioningConfig = Exclude<Infer<typeof provisioningConfigSchema>, symbol>;

/** The credential store behind xmpp.passwordFile, when that file is an enrolled device's password. */
export function enrolledCredentialStore(passwordFile: string | undefined): CredentialStore | undefined {
  if (!passwordFile || basename(passwordFile) !== PASSWORD_FILE) return undefined;
  try {
    if (!statSync(passwordFile).isFile()) return undefined;
  } catch {
    return undefined; // no such file: the config loader has already reported it if it mattered
  }
  return new CredentialStore(dirname(passwordFile));
}

export interface DeviceCredentialsOptions {
  credentials: CredentialStore;
  session: SessionPort & PasswordUpdatable & RecoverableSession;
  config: ProvisioningConfig;
  /** The loaded config file: relative paths in `config` are relative to it. */
  configFile: string;
  /** The password the session was created with. */
  sessionPassword: string;
  log?: Logger;
  timers?: Timers;
  onRecovery?: (outcome: RecoveryOutcome) => void;
}

export class DeviceCredentials {
  readonly credentials: CredentialStore;
  readonly revocationListFile: string | undefined;
  private readonly log: Logger;
  private readonly recovery: LoginRecovery;
  private periodic: { stop(): void } | undefined;
  private lastCheck: RevocationCheckResult | undefined;

  constructor(private readonly opts: DeviceCredentialsOptions) {
    this.credentials = opts.credentials;
    this.log = opts.log ?? silentLogger;
    const file = opts.config.revocationListFile;
    this.revocationListFile =
      file === undefined ? undefined : isAbsolute(file) ? file : resolve(dirname(resolve(opts.configFile)), file);
    this.recovery = new LoginRecovery({
      session: opts.session,
      credentials: opts.credentials,
      sessionPassword: opts.sessionPassword,
      log: this.log,
      ...(opts.onRecovery ? { onSettled: opts.onRecovery } : {}),
    });
  }

  /** The revocation list in force after start() (undefined when none is configured). */
  get revocation(): RevocationCheckResult | undefined {
    return this.lastCheck;
  }

  /** The `rotate-credentials` command for the agent's registry. */
  command(): CommandDefinition {
    return rotationCommand({ session: this.opts.session, credentials: this.credentials, log: this.log });
  }

  /** Before session.start(). Rejects with ConfigError when the device is revoked or the list is unverifiable. */
  async start(): Promise<void> {
    if (this.revocationListFile) {
      const { checkRevocation } = await import("./revocation-check.js");
      try {
        this.lastCheck = checkRevocation({
          credentials: this.credentials,
          listFile: this.revocationListFile,
          log: this.log,
        });
      } catch (err) {
        // A revoked device keeps nothing that logs in: the FAST token would work until it expires.
        if ((err as { code?: string }).code === "device_revoked") this.opts.session.dropFastToken?.("device revoked");
        throw err;
      }
    }
    this.recovery.start();
    const intervalMs = this.opts.config.selfRotationIntervalMs;
    if (intervalMs > 0 && !this.periodic) {
      const passwordFile = this.credentials.passwordFile;
      this.periodic = startPeriodicRotation({
        session: this.opts.session,
        credentials: this.credentials,
        log: this.log,
        intervalMs,
        timers: this.opts.timers ?? realTimers,
        // The password file's age, so restarts do not postpone the rotation.
        lastRotatedAt: () => {
          try {
            return statSync(passwordFile).mtimeMs;
          } catch {
            return undefined;
          }
        },
      });
      this.log.info("periodic self-rotation on", { intervalMs });
    }
  }

  stop(): void {
    this.periodic?.stop();
    this.periodic = undefined;
    this.recovery.stop();
  }
}

/**
 * The feature for this config, or undefined for a device that is not enrolled. A revocation list
 * configured for a device that is not enrolled is a config error: there is nothing to check it against.
 */
export function deviceCredentialsFor(
  opts: Omit<DeviceCredentialsOptions, "credentials"> & { passwordFile: string | undefined },
): DeviceCredentials | undefined {
  const credentials = enrolledCredentialStore(opts.passwordFile);
  if (!credentials) {
    if (opts.config.revocationListFile !== undefined)
      throw new ConfigError(
        "revocation_not_enrolled",
        `provisioning.revocationListFile is set, but xmpp.passwordFile (${opts.passwordFile ?? "unset"}) is not an enrolled device's credentials/${PASSWORD_FILE}: enrol with iot-agent enroll, or remove the key`,
        { path: "provisioning.revocationListFile" },
      );
    if (opts.config.selfRotationIntervalMs > 0)
      opts.log?.warn("provisioning.selfRotationIntervalMs ignored: the device is not enrolled (no credential store)");
    return undefined;
  }
  return new DeviceCredentials({ ...opts, credentials });
}
