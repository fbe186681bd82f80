/**
 * A fleet job: one ad-hoc command (XEP-0050) to run on a set of devices chosen when the job was
 * created, with the bounds it runs under and every device's outcome. Jobs are files (job-store.ts),
 * so a run that was interrupted can be resumed and its results read later.
 *
 * A device's status moves pending -> running -> completed | error | timed-out | unknown, or
 * pending -> waiting (offline, until the job's wait ends) -> running ... | offline, or, when the
 * job is aborted, pending | waiting -> aborted. "running" is written to the job file before the
 * command is sent: a device found "running" when a job resumes may have run the command, so it
 * becomes "unknown" and is never sent it again (no device runs a job twice).
 */
import type { Selector } from "../selector.js";

export const JOB_VERSION = 1;

export type DeviceRunStatus =
  | "pending"
  | "waiting"
  | "running"
  | "completed"
  | "error"
  | "timed-out"
  | "offline"
  | "aborted"
  | "unknown";

/** Statuses a device does not leave. */
export const FINAL_STATUSES: ReadonlySet<DeviceRunStatus> = new Set([
  "completed",
  "error",
  "timed-out",
  "offline",
  "aborted",
  "unknown",
]);

/** Outcomes that count towards `maxFailures`: the device was reached and it did not work. */
export const FAILURE_STATUSES: ReadonlySet<DeviceRunStatus> = new Set(["error", "timed-out"]);

/** "N" devices or "P%" of the job's devices. */
export type Amount = { count: number } | { percent: number };

/**
 * What a job does to each device: run an ad-hoc command on it (`exec`), have it rotate its password
 * (its `rotate-credentials` command; needs it online), or shut its account out on the server
 * (`revoke`; the device need not be online), or install a release (`update`: its `update` command,
 * then the outcome it reports once restarted: usecases/update.ts).
 */
export type JobKind = "command" | "rotate" | "revoke" | "update";

export interface JobSpec {
  kind: JobKind;
  /** The ad-hoc command node run on each device, e.g. "set-sampling" (for rotate: rotate-credentials). */
  node: string;
  /** The form submitted when the command asks for one (field -> value or values). */
  fields: Record<string, string | string[]>;
  /** The selector as given, for the record; the devices are fixed at creation. */
  selector: Selector;
  /** Commands in flight at once. */
  concurrency: number;
  /** Per device, from sending the command to its last answer. */
  deviceTimeoutMs: number;
  /** Offline devices are waited for until then (ISO time); absent: reported offline at once. */
  waitUntil?: string;
  /** More failures than this abort the devices not yet started. */
  maxFailures?: Amount;
  /** Staged rollout: waves of this size; the next starts when every device of the wave has finished. */
  batch?: Amount;
  /** revoke: try XEP-0133 disable-user before deleting. */
  disable?: boolean;
  /** revoke: devices already revoked before the job; an account not found for them is no failure. */
  revokedBefore?: string[];
  /** update: the release's version, whose outcome each device is asked for after accepting it. */
  release?: { version: string };
}

export interface DeviceRun {
  id: string;
  /** Full JID the command goes to (the device's bare JID and the resource it binds). */
  jid: string;
  status: DeviceRunStatus;
  /** The device's notes, or why it did not complete. */
  note?: string;
  startedAt?: string;
  endedAt?: string;
}

export type JobState = "running" | "finished" | "aborted" | "interrupted";

export interface Job {
  version: typeof JOB_VERSION;
  id: string;
  createdAt: string;
  updatedAt: string;
  spec: JobSpec;
  state: JobState;
  /** Why the rest was aborted (the failure threshold). */
  abortReason?: string;
  devices: DeviceRun[];
}

export type JobCounts = Record<DeviceRunStatus, number>;

export function countStatuses(devices: readonly DeviceRun[]): JobCounts {
  const c: JobCounts = {
    pending: 0,
    waiting: 0,
    running: 0,
    completed: 0,
    error: 0,
    "timed-out": 0,
    offline: 0,
    aborted: 0,
    unknown: 0,
  };
  for (const d of devices) c[d.status]++;
  return c;
}

/** How many devices an Amount is out of `total` (a percentage rounds down, at least 1 for a batch). */
export function amountOf(a: Amount, total: number): number {
  return "count" in a ? a.count : Math.floor((a.percent / 100) * total);
}

/** "10" or "10%" -> Amount; undefined when it is neither (the CLI says why). */
export function parseAmount(text: string): Amount | undefined {
  const m = /^(\d{1,7})(%?)$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  if (m[2]) return n <= 100 ? { percent: n } : undefined;
  return { count: n };
}

export function formatAmount(a: Amount): string {
  return "count" in a ? String(a.count) : `${a.percent}%`;
}

/** A sortable id that says when: j-20261130-221500-3f9a. */
export function newJobId(now: Date, random: () => number = Math.random): string {
  const t = now.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  const suffix = Math.floor(random() * 0x10000)
    .toString(16)
    .padStart(4, "0");
  return `j-${t}-${suffix}`;
}

export const JOB_ID = /^j-\d{8}-\d{6}-[0-9a-f]{4}$/;
