/**
 * `exec`: one ad-hoc command on every device a selector picks, as a persisted job (jobs/): create
 * it (the devices are fixed then: enrolled and provisioned ones; revoked devices have no account),
 * run it under its lock through the admin's session, and run it again to resume it.
 */
import { ProvisioningError } from "../errors.js";
import { type Amount, type Job, type JobCounts, type JobSpec, newJobId } from "../jobs/job.js";
import type { JobStore } from "../jobs/job-store.js";
import { JobRunner } from "../jobs/runner.js";
import { type Selector, selectDevices } from "../selector.js";
import type { FleetServices } from "./services.js";

export interface ExecRequest {
  selector: Selector;
  node: string;
  fields: Record<string, string | string[]>;
  concurrency: number;
  deviceTimeoutMs: number;
  /** How long offline devices are waited for, from now; 0: reported offline at once. */
  waitMs: number;
  maxFailures?: Amount;
  batch?: Amount;
}

export function createExecJob(req: ExecRequest, services: FleetServices, jobs: JobStore): Job {
  const now = services.now();
  const picked = selectDevices(services.store.read(), req.selector);
  const revoked = picked.filter((d) => d.state === "revoked");
  if (revoked.length > 0)
    services.progress(
      `leaving out ${revoked.length} revoked device(s) (${revoked
        .slice(0, 5)
        .map((d) => d.id)
        .join(", ")}${revoked.length > 5 ? ", ..." : ""}): they have no account`,
    );
  const devices = picked.filter((d) => d.state !== "revoked");
  if (devices.length === 0)
    throw new ProvisioningError("device_unknown", "the selector picks no device that can run a command");
  const spec: JobSpec = {
    node: req.node,
    fields: req.fields,
    selector: req.selector,
    concurrency: req.concurrency,
    deviceTimeoutMs: req.deviceTimeoutMs,
    ...(req.waitMs > 0 ? { waitUntil: new Date(now.getTime() + req.waitMs).toISOString() } : {}),
    ...(req.maxFailures ? { maxFailures: req.maxFailures } : {}),
    ...(req.batch ? { batch: req.batch } : {}),
  };
  const job: Job = {
    version: 1,
    id: newJobId(now),
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
    spec,
    state: "interrupted", // not started yet: what `job ID --resume` picks up if the run never begins
    devices: devices.map((d) => ({ id: d.id, jid: `${d.jid}/${d.resource}`, status: "pending" })),
  };
  jobs.save(job, now);
  return job;
}

export interface RunHooks {
  onProgress?: (counts: JobCounts, job: Job) => void;
  /** Aborted: send nothing more, let what is in flight finish, leave the job resumable. */
  signal?: AbortSignal;
  pollMs?: number;
}

/** Runs (or resumes) a job under its lock; resolves with the job as saved at the end. */
export async function runJob(id: string, services: FleetServices, jobs: JobStore, hooks: RunHooks = {}): Promise<Job> {
  const lock = await jobs.lock(id);
  try {
    const job = jobs.read(id);
    const connection = await services.connect();
    try {
      if (!connection.devices)
        throw new ProvisioningError("usage", "this connection cannot reach devices (no device port)");
      const runner = new JobRunner(job, {
        port: connection.devices,
        save: (j) => jobs.save(j, services.now()),
        now: services.now,
        ...(hooks.pollMs ? { pollMs: hooks.pollMs } : {}),
        onWarning: (line) => services.progress(line),
        ...(hooks.onProgress ? { onProgress: hooks.onProgress } : {}),
      });
      const stop = () => runner.stop();
      if (hooks.signal?.aborted) runner.stop();
      hooks.signal?.addEventListener("abort", stop, { once: true });
      try {
        return await runner.run();
      } finally {
        hooks.signal?.removeEventListener("abort", stop);
      }
    } finally {
      await connection.close();
    }
  } finally {
    lock.release();
  }
}
