/**
 * Where the session keeps its XEP-0484 FAST token and its XEP-0388 client id between logins.
 *
 * The token is a credential: whoever holds it logs in as the device until it expires (Prosody:
 * 21 days, rotated daily), so the file is 0600, written atomically, and dropped when the server
 * refuses it, when the password is rotated and on revocation. The client id (the `<user-agent id>`)
 * must stay the same across restarts: the server files tokens under it, and Bind2 derives the
 * resource from it. A missing or unreadable file only costs one password login; it never stops
 * the session.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { AgentError } from "../kernel/errors.js";
import { writeFileAtomic } from "../kernel/fsutil.js";
import type { Logger } from "../kernel/log.js";

export interface FastToken {
  /** The HT mechanism the token was issued for; it works with that one only. */
  mechanism: string;
  secret: string;
  /** Milliseconds since the epoch; the token is not offered after it. */
  expiresAt: number;
}

export interface FastTokenStore {
  /** Stable per device; created on first use. */
  clientId(): string;
  token(): FastToken | undefined;
  saveToken(token: FastToken): void;
  /** Forgets the token (refused, password rotated, revoked); `reason` goes to the log. */
  dropToken(reason: string): void;
}

export class FastTokenError extends AgentError {}

/** Keeps everything in memory: tokens help reconnects within one process only. */
export class MemoryFastTokenStore implements FastTokenStore {
  private id = randomUUID();
  private current: FastToken | undefined;
  clientId(): string {
    return this.id;
  }
  token(): FastToken | undefined {
    return this.current;
  }
  saveToken(token: FastToken): void {
    this.current = token;
  }
  dropToken(): void {
    this.current = undefined;
  }
}

interface FileShape {
  format: "iot-agent-fast-token";
  version: typeof FAST_TOKEN_FORMAT;
  clientId: string;
  token?: FastToken;
}

const FORMAT = "iot-agent-fast-token";
/** The file's version, for the OTA data-formats rule (agent/update/formats.ts). */
export const FAST_TOKEN_FORMAT = 1;

function parseToken(v: unknown): FastToken | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  const t = v as Record<string, unknown>;
  if (typeof t.mechanism !== "string" || typeof t.secret !== "string" || typeof t.expiresAt !== "number")
    return undefined;
  if (t.secret.length === 0 || t.secret.length > 4096 || !Number.isFinite(t.expiresAt)) return undefined;
  return { mechanism: t.mechanism, secret: t.secret, expiresAt: t.expiresAt };
}

/**
 * One JSON file (mode 0600). Read once at construction; every change is written through, so a
 * power cut leaves the old or the new content. A write that fails is logged and the store goes on
 * in memory: the next start logs in with the password.
 */
export class FileFastTokenStore implements FastTokenStore {
  private state: FileShape;
  private onDisk = false;

  constructor(
    private readonly file: string,
    private readonly log: Logger,
  ) {
    this.state = this.read();
  }

  private read(): FileShape {
    let text: string;
    try {
      text = readFileSync(this.file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT")
        this.log.warn("cannot read the FAST token file; logging in with the password", {
          file: this.file,
          error: err,
        });
      return this.fresh();
    }
    try {
      const v = JSON.parse(text) as Record<string, unknown>;
      if (
        v.format !== FORMAT ||
        v.version !== FAST_TOKEN_FORMAT ||
        typeof v.clientId !== "string" ||
        v.clientId.length === 0
      )
        throw new FastTokenError("fast_token_file", `not a FAST token file of version ${FAST_TOKEN_FORMAT}`, {
          file: this.file,
        });
      const token = parseToken(v.token);
      this.onDisk = true;
      return { format: FORMAT, version: FAST_TOKEN_FORMAT, clientId: v.clientId, ...(token ? { token } : {}) };
    } catch (err) {
      this.log.warn("FAST token file is corrupt; starting afresh", { file: this.file, error: err });
      return this.fresh(true);
    }
  }

  private fresh(write = false): FileShape {
    const s: FileShape = { format: FORMAT, version: FAST_TOKEN_FORMAT, clientId: randomUUID() };
    this.state = s;
    if (write) {
      this.write();
      this.onDisk = true;
    }
    return s;
  }

  private write(): void {
    try {
      writeFileAtomic(this.file, `${JSON.stringify(this.state)}\n`, 0o600);
    } catch (err) {
      this.log.warn("cannot write the FAST token file; the token lasts until the agent restarts", {
        file: this.file,
        error: err,
      });
    }
  }

  clientId(): string {
    // Written on first use, not at construction: an agent whose server offers no SASL2 leaves no file.
    if (!this.onDisk) {
      this.onDisk = true;
      this.write();
    }
    return this.state.clientId;
  }

  token(): FastToken | undefined {
    return this.state.token;
  }

  saveToken(token: FastToken): void {
    this.state = { ...this.state, token };
    this.write();
  }

  dropToken(reason: string): void {
    if (this.state.token === undefined) return;
    this.log.info("FAST token dropped", { reason });
    const { token: _dropped, ...rest } = this.state;
    this.state = rest;
    this.write();
  }
}
