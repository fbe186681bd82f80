/**
 * Runs a job (job.ts) against the fleet through a DevicePort: at most `concurrency` commands in
 * flight, each bounded by `deviceTimeoutMs`; devices the server does not list as online wait until
 * the job's `waitUntil` (the online list is asked again every `pollMs`) and are sent the command
 * when they appear; with `batch`, wave after wave; past `maxFailures` the devices not yet started
 * are aborted. Every change is saved to the job file, and a device is marked "running" there
 * before its command is sent, so a resumed job never sends a device its command twice.
 *
 * stop() (Ctrl-C) sends nothing more, lets the commands in flight finish, and leaves the job
 * "interrupted": run() on it again resumes it.
 */
import type { Element } from "ltx";
import { ProvisioningError } from "../errors.js";
import {
  amountOf,
  countStatuses,
  type DeviceRun,
  FAILURE_STATUSES,
  FINAL_STATUSES,
  formatAmount,
  type Job,
  type JobCounts,
} from "./job.js";

/** What the runner does to one device; built from the job's kind by usecases/jobs.ts. */
export interface JobAction {
  /** Whether the device must be online (a command) or not (an account change on the server). */
  needsOnline: boolean;
  /**
   * Resolves with the notes to keep. Rejects with ProvisioningError: `adhoc_failed` /
   * `adhoc_unsupported` (refused: its note), `xmpp_timeout`; anything else means the outcome is
   * not known.
   */
  run(device: DeviceRun, timeoutMs: number): Promise<string[]>;
}

/** What the runner needs from the server; the XMPP one is ../xmpp-devices.ts. */
export interface DevicePort {
  /** Bare JIDs (lower case) online on these domains. */
  online(domains: readonly string[]): Promise<Set<string>>;
  /**
   * Runs the command at the device's full JID, submitting `fields` if it asks for a form; resolves
   * with its notes. Rejects with ProvisioningError: `adhoc_failed` / `adhoc_unsupported` (the
   * device said no: its note), `xmpp_timeout`; anything else means the outcome is not known.
   */
  execute(
    fullJid: string,
    node: string,
    fields: Record<string, string | string[]>,
    timeoutMs: number,
  ): Promise<string[]>;
  /**
   * Runs the command with `fields` like execute() and resolves with its result form's values (an
   * empty submission asks `update` for its status). Rejects like execute().
   */
  form(
    fullJid: string,
    node: string,
    fields: Record<string, string | string[]>,
    timeoutMs: number,
  ): Promise<Record<string, string[]>>;
  /**
   * The one item of a status node (docs/protocol.md "Status item"), its payload element; undefined
   * when the node or the item does not exist. Rejects with ProvisioningError `adhoc_failed` (the
   * service refused: `condition` in its context) or `xmpp_timeout`.
   */
  statusItem(service: string, node: string, timeoutMs: number): Promise<Element | undefined>;
  /**
   * Subscribes this session to the nodes and hands over each item a notification carries (its
   * payload element, with the node); stop() unsubscribes from every node it subscribed to.
   * Per node, a refusal is reported through `onRefused` and the others go on.
   */
  watch(
    targets: ReadonlyArray<{ service: string; node: string }>,
    onItem: (node: string, payload: Element) => void,
    opts: { timeoutMs: number; concurrency: number; onRefused: (node: string, why: string) => void },
  ): Promise<{ subscribed: number; stop(): Promise<void> }>;
}

export interface RunnerOptions {
  /** Who is online (DevicePort.online). */
  online: DevicePort["online"];
  action: JobAction;
  /** Persists the job (JobStore.save). */
  save: (job: Job) => void;
  now?: () => Date;
  /** How often offline devices are looked for again (default 15 s). */
  pollMs?: number;
  /** Results are written at most this often (default 250 ms); dispatches are written at once. */
  resultSaveMs?: number;
  /** Hears what went wrong without ending the run (an online list that did not come). */
  onWarning?: (line: string) => void;
  /** Hears every change of the counts (progress display). */
  onProgress?: (counts: JobCounts, job: Job) => void;
}

const bareOf = (jid: string) => jid.split("/")[0]!.toLowerCase();
const domainOf = (jid: string) => bareOf(jid).split("@")[1] ?? "";

export class JobRunner {
  private stopping = false;
  private wake: (() => void) | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly now: () => Date;

  constructor(
    readonly job: Job,
    private readonly o: RunnerOptions,
  ) {
    this.now = o.now ?? (() => new Date());
  }

  /** Ends the run after the commands in flight; the job is left "interrupted" (resumable). */
  stop(): void {
    this.stopping = true;
    this.wake?.();
  }

  async run(): Promise<Job> {
    const { job } = this;
    if (job.state === "finished" || job.state === "aborted")
      throw new ProvisioningError("usage", `job ${job.id} is ${job.state}: nothing left to run`, { jobId: job.id });
    // In flight when the last run ended: it may have run there. Never send it again.
    for (const d of job.devices)
      if (d.status === "running") this.finish(d, "unknown", "the run was interrupted while the command was in flight");
    job.state = "running";
    this.save();

    const spec = job.spec;
    const total = job.devices.length;
    const maxFailures = spec.maxFailures ? amountOf(spec.maxFailures, total) : Number.POSITIVE_INFINITY;
    const waveSize = spec.batch ? Math.max(1, amountOf(spec.batch, total)) : total;
    const waitUntil = spec.waitUntil ? Date.parse(spec.waitUntil) : 0;
    const pollMs = this.o.pollMs ?? 15_000;
    const domains = [...new Set(job.devices.map((d) => domainOf(d.jid)))];
    const inflight = new Set<Promise<void>>();
    const needsOnline = this.o.action.needsOnline;
    const lookUp = (): Promise<Set<string>> =>
      needsOnline ? this.o.online(domains) : Promise.resolve(new Set(job.devices.map((d) => bareOf(d.jid))));
    let online = await lookUp();
    let polledAt = this.now().getTime();
    let waveEnd = 0;

    for (;;) {
      if (this.stopping) break;
      const failures = job.devices.filter((d) => FAILURE_STATUSES.has(d.status)).length;
      if (failures > maxFailures && !job.abortReason) {
        job.abortReason = `${failures} devices failed, more than --max-failures ${formatAmount(spec.maxFailures!)} (${maxFailures} of ${total})`;
        for (const d of job.devices)
          if (d.status === "pending" || d.status === "waiting") this.finish(d, "aborted", job.abortReason);
        this.save();
      }
      if (job.abortReason) break;

      // The next wave starts when every device of the ones before has finished or is waiting.
      const settled = (d: DeviceRun) => FINAL_STATUSES.has(d.status) || d.status === "waiting";
      const waveBefore = waveEnd;
      while (waveEnd < total && job.devices.slice(0, waveEnd).every(settled))
        waveEnd = Math.min(total, waveEnd + waveSize);
      // A wave that opens later than the last look at the online list gets a fresh one.
      if (waveEnd !== waveBefore && waveBefore > 0 && this.now().getTime() - polledAt >= pollMs) {
        online = await this.lookAgain(domains, online);
        polledAt = this.now().getTime();
      }
      const open = job.devices.slice(0, waveEnd);
      const nowMs = this.now().getTime();
      let changed = false;
      for (const d of open)
        if (d.status === "pending" && !online.has(bareOf(d.jid))) {
          if (nowMs < waitUntil) d.status = "waiting";
          else this.finish(d, "offline", "not online");
          changed = true;
        }
      const ready = open.filter((d) => (d.status === "pending" || d.status === "waiting") && online.has(bareOf(d.jid)));
      const take = ready.slice(0, Math.max(0, spec.concurrency - inflight.size));
      for (const d of take) {
        d.status = "running";
        d.startedAt = this.now().toISOString();
      }
      // Written before the commands go out: see the header.
      if (take.length > 0 || changed) this.save();
      // Devices that just began waiting may settle the wave: look again at once.
      if (changed && take.length === 0) continue;
      for (const d of take) {
        const p = this.execute(d).finally(() => {
          inflight.delete(p);
          this.wake?.();
        });
        inflight.add(p);
      }

      const waiting = job.devices.filter((d) => d.status === "waiting");
      const left = job.devices.some((d) => d.status === "pending" || d.status === "running");
      if (!left && inflight.size === 0) {
        if (waiting.length === 0) break;
        if (this.now().getTime() >= waitUntil) {
          for (const d of waiting) this.finish(d, "offline", `not online before ${spec.waitUntil}`);
          this.save();
          break;
        }
      }
      // Sleep until a command ends, the next look for waiting devices (or the end of the wait), or stop().
      const needPoll = waiting.length > 0;
      const t = this.now().getTime();
      const sleepMs = Math.max(0, Math.min(polledAt + pollMs - t, waitUntil - t));
      await new Promise<void>((resolve) => {
        const timer = needPoll ? setTimeout(resolve, sleepMs) : undefined;
        this.wake = () => {
          if (timer) clearTimeout(timer);
          resolve();
        };
        if (inflight.size === 0 && !needPoll) resolve();
      });
      this.wake = undefined;
      if (needPoll && this.now().getTime() - polledAt >= pollMs && !this.stopping) {
        online = await this.lookAgain(domains, online);
        polledAt = this.now().getTime();
      }
    }

    await Promise.all(inflight);
    job.state = job.abortReason ? "aborted" : this.stopping && !this.done() ? "interrupted" : "finished";
    this.save();
    return job;
  }

  /**
   * A device's result is saved within `resultSaveMs` (or with the next write before a dispatch):
   * one durable write per result would serialise a thousand-device job on the disk. A result lost
   * to a crash in that window leaves the device "running", which a resume reports as "unknown".
   */
  private resultSaved(): void {
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.save();
    }, this.o.resultSaveMs ?? 250);
  }

  /** The online list again; when the server does not answer this time, the last one stands. */
  private async lookAgain(domains: readonly string[], last: Set<string>): Promise<Set<string>> {
    if (!this.o.action.needsOnline) return last;
    try {
      return await this.o.online(domains);
    } catch (err) {
      this.o.onWarning?.(`the online list was not read (${(err as Error).message}); using the previous one`);
      return last;
    }
  }

  private done(): boolean {
    return this.job.devices.every((d) => FINAL_STATUSES.has(d.status));
  }

  private async execute(d: DeviceRun): Promise<void> {
    const { node, deviceTimeoutMs } = this.job.spec;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new ProvisioningError("xmpp_timeout", `no answer within ${deviceTimeoutMs} ms`, { to: d.jid, node })),
        deviceTimeoutMs,
      );
    });
    try {
      const notes = await Promise.race([this.o.action.run(d, deviceTimeoutMs), deadline]);
      this.finish(d, "completed", notes.join("; ") || undefined);
    } catch (err) {
      const code = (err as { code?: string }).code;
      const msg = (err as Error).message ?? String(err);
      if (code === "xmpp_timeout") this.finish(d, "timed-out", msg);
      else if (code === "adhoc_failed" || code === "adhoc_unsupported") {
        const note = (err as ProvisioningError).context?.note;
        this.finish(d, "error", typeof note === "string" ? note : msg);
      } else this.finish(d, "unknown", `outcome not known: ${msg}`);
    } finally {
      clearTimeout(timer);
    }
    this.resultSaved();
    this.o.onProgress?.(countStatuses(this.job.devices), this.job);
  }

  private finish(d: DeviceRun, status: DeviceRun["status"], note?: string): void {
    d.status = status;
    if (note) d.note = note;
    else delete d.note;
    d.endedAt = this.now().toISOString();
  }

  private save(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.o.save(this.job);
    this.o.onProgress?.(countStatuses(this.job.devices), this.job);
  }
}
