/**
 * The audit log: one JSON line per command execution attempt (who, what, parameters with secrets
 * redacted, outcome, duration), appended to a file rotated by size with a bounded number of old
 * files (audit.jsonl, audit.jsonl.1, ... audit.jsonl.N). Writes are queued (bounded) and done in
 * order by one writer, so a slow SD card never blocks a command answer; what cannot be written is
 * counted and logged, never silently lost.
 */
import { type FileHandle, mkdir, open, rename, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { describeError } from "../../kernel/errors.js";
import { type Logger, redact, silentLogger } from "../../kernel/log.js";

export type AuditOutcome =
  | "completed" // ran to the end
  | "failed" // ran, and the handler reported a failure (error note)
  | "error" // the handler threw
  | "timeout" // the handler outran its timeout; its effect is unknown
  | "forbidden" // not authorised; nothing ran
  | "rejected" // bad values, bad action, bad session, too many sessions; nothing ran
  | "canceled" // the requester canceled a multi-stage session
  | "expired"; // a multi-stage session timed out

export interface AuditRecord {
  /** ISO-8601 time of the answer. */
  t: string;
  requester: string;
  node: string;
  sessionid?: string;
  action: string;
  params?: Record<string, unknown>;
  outcome: AuditOutcome;
  durationMs: number;
  /** Why, for anything but "completed": the note or error text the requester saw. */
  reason?: string;
}

export interface AuditSink {
  record(r: AuditRecord): void;
}

/** Longest value of each logged text, so no requester can make one record large. */
export const AUDIT_FIELD_LIMITS = { requester: 256, node: 128, action: 32, sessionid: 128, reason: 512, param: 256 };

function cut(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max)}…[${s.length - max} more chars]`;
}

/**
 * Bounds every text a requester controls (node names, JIDs, values, reasons quoting them): a
 * stranger's 200 KB node name costs a few hundred bytes in the audit trail, not 200 KB.
 */
export function boundRecord(r: AuditRecord): AuditRecord {
  const L = AUDIT_FIELD_LIMITS;
  const out: AuditRecord = {
    ...r,
    requester: cut(r.requester, L.requester),
    node: cut(r.node, L.node),
    action: cut(r.action, L.action),
  };
  if (r.sessionid !== undefined) out.sessionid = cut(r.sessionid, L.sessionid);
  if (r.reason !== undefined) out.reason = cut(r.reason, L.reason);
  if (r.params) {
    const params: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(r.params).slice(0, 32)) {
      const value = typeof v === "string" ? cut(v, L.param) : Array.isArray(v) ? v.slice(0, 32) : v;
      params[cut(k, 64)] = value;
    }
    out.params = params;
  }
  return out;
}

/**
 * Sends refusals (outcome "forbidden": strangers, and operators asking for what they may not run)
 * to their own sink, so a flood of them rotates only its own files and can never push an
 * operator's record out of the audit trail.
 */
export class AuditRouter implements AuditSink {
  constructor(
    private readonly main: AuditSink,
    private readonly refusals: AuditSink,
  ) {}
  record(r: AuditRecord): void {
    (r.outcome === "forbidden" ? this.refusals : this.main).record(r);
  }
}

/** Keeps records in memory: for tests, and for a device configured without an audit file. */
export class MemoryAuditSink implements AuditSink {
  readonly records: AuditRecord[] = [];
  constructor(private readonly max = 10_000) {}
  record(r: AuditRecord): void {
    this.records.push(r);
    if (this.records.length > this.max) this.records.shift();
  }
}

export interface AuditLogOptions {
  path: string;
  maxBytes: number;
  maxFiles: number;
  maxPending: number;
  logger?: Logger;
}

export class AuditLog implements AuditSink {
  private readonly logger: Logger;
  private queue: string[] = [];
  private file: FileHandle | undefined;
  private size = 0;
  private writing: Promise<void> | undefined;
  private stopped = true;
  readonly stats = { written: 0, dropped: 0, rotations: 0, writeErrors: 0 };

  constructor(private readonly opts: AuditLogOptions) {
    this.logger = (opts.logger ?? silentLogger).child({ component: "audit" });
  }

  async start(): Promise<void> {
    await mkdir(dirname(this.opts.path), { recursive: true });
    await this.reopen();
    this.stopped = false;
  }

  record(r: AuditRecord): void {
    if (this.stopped) {
      this.drop(r, "audit log is not running");
      return;
    }
    if (this.queue.length >= this.opts.maxPending) {
      this.drop(r, "audit queue full");
      return;
    }
    // Parameters were redacted by declaration already; redact() also catches secret-looking keys.
    this.queue.push(`${JSON.stringify(redact(boundRecord(r)))}\n`);
    this.kick();
  }

  /** Resolves once every record queued so far is written (or counted as dropped). */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
  }

  async stop(): Promise<void> {
    await this.flush();
    this.stopped = true;
    await this.file?.close();
    this.file = undefined;
  }

  private drop(r: AuditRecord, why: string): void {
    this.stats.dropped++;
    this.logger.error("audit record dropped", { why, record: r });
  }

  private kick(): void {
    if (this.writing) return;
    this.writing = this.drain().finally(() => {
      this.writing = undefined;
      if (this.queue.length > 0 && !this.stopped) this.kick();
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const line = this.queue.shift()!;
      const len = Buffer.byteLength(line);
      try {
        // A failed rotation leaves no open file: reopen here so one bad moment does not end auditing.
        if (!this.file) await this.reopen();
        if (this.size > 0 && this.size + len > this.opts.maxBytes) await this.rotate();
        await this.file!.appendFile(line);
        this.size += len;
        this.stats.written++;
      } catch (err) {
        this.stats.writeErrors++;
        this.stats.dropped++;
        this.logger.error("audit write failed", { error: describeError(err), line: line.trimEnd() });
      }
    }
  }

  private async rotate(): Promise<void> {
    const { path, maxFiles } = this.opts;
    await this.file?.close();
    this.file = undefined;
    await ignoreMissing(unlink(`${path}.${maxFiles}`));
    for (let i = maxFiles - 1; i >= 1; i--) await ignoreMissing(rename(`${path}.${i}`, `${path}.${i + 1}`));
    await rename(path, `${path}.1`);
    this.stats.rotations++;
    await this.reopen();
  }

  private async reopen(): Promise<void> {
    this.file = await open(this.opts.path, "a", 0o600);
    this.size = (await this.file.stat()).size;
  }
}

async function ignoreMissing(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}
