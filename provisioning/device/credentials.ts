/**
 * The device's credential directory (default <dataDir>/credentials, 0700): the account password
 * (0600), the device key (0600) and public material (certificates, 0644). Rotation is journalled:
 * the new password is written to `password.next` before the server is asked to change it, and
 * renamed over `password` once the server said yes. A crash in between leaves both on disk, and
 * `candidates()` returns them in the order to try, so the device never locks itself out.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ProvisioningError } from "../errors.js";
import { ensurePrivateDir, PRIVATE_FILE_MODE, writeFileAtomic } from "../fsutil.js";

export const PASSWORD_FILE = "password";
export const NEXT_PASSWORD_FILE = "password.next";
export const DEVICE_KEY_FILE = "device.key.pem";
export const DEVICE_CSR_FILE = "device.csr.pem";
export const CLIENT_CERT_FILE = "client.cert.pem";
export const SERVER_CA_FILE = "server-ca.pem";
export const FLEET_CA_FILE = "fleet-ca.pem";
export const ENROLMENT_FILE = "enrolment.json";

/** 32 random bytes, base64url: 256 bits, safe in any SASL mechanism and any config file. */
export function generatePassword(): string {
  return randomBytes(32).toString("base64url");
}

export class CredentialStore {
  constructor(readonly dir: string) {}

  path(name: string): string {
    return join(this.dir, name);
  }

  init(): void {
    try {
      ensurePrivateDir(this.dir);
    } catch (err) {
      throw new ProvisioningError(
        "enroll_io",
        `cannot create credential directory ${this.dir}: ${(err as Error).message}`,
        {
          dir: this.dir,
        },
        { cause: err },
      );
    }
  }

  writeSecret(name: string, value: string): string {
    this.init();
    const file = this.path(name);
    writeFileAtomic(file, value, PRIVATE_FILE_MODE);
    return file;
  }

  writePublic(name: string, value: string): string {
    this.init();
    const file = this.path(name);
    writeFileAtomic(file, value, 0o644);
    return file;
  }

  read(name: string): string | undefined {
    const file = this.path(name);
    if (!existsSync(file)) return undefined;
    return readFileSync(file, "utf8");
  }

  get passwordFile(): string {
    return this.path(PASSWORD_FILE);
  }

  readPassword(): string {
    const pw = this.read(PASSWORD_FILE);
    if (!pw)
      throw new ProvisioningError("enroll_io", `no password in ${this.passwordFile}`, { file: this.passwordFile });
    return pw.replace(/\r?\n$/, "");
  }

  writePassword(password: string): string {
    return this.writeSecret(PASSWORD_FILE, password);
  }

  /** Step 1 of a rotation: journal the new password. */
  beginRotation(next: string): void {
    this.writeSecret(NEXT_PASSWORD_FILE, next);
  }

  /** Step 3, after the server accepted: the journalled password becomes the password. */
  commitRotation(): void {
    const next = this.path(NEXT_PASSWORD_FILE);
    renameSync(next, this.passwordFile);
    // Durability of the rename: writeFileAtomic's directory fsync happens on the next write; do one now.
    this.writeSecret(".rotated", new Date().toISOString());
  }

  /** The server refused: forget the journalled password. */
  abortRotation(): void {
    rmSync(this.path(NEXT_PASSWORD_FILE), { force: true });
  }

  pendingRotation(): string | undefined {
    return this.read(NEXT_PASSWORD_FILE)?.replace(/\r?\n$/, "");
  }

  /**
   * Passwords to try at login, in order: the current one, then a journalled one whose rotation may
   * have reached the server before a crash. After a login with the second, call commitRotation().
   */
  candidates(): string[] {
    const out = [this.readPassword()];
    const next = this.pendingRotation();
    if (next && next !== out[0]) out.push(next);
    return out;
  }
}
