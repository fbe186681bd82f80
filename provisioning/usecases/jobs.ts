/**
 * Fleet jobs (jobs/): one action on every device a selector picks, persisted so that it can be
 * resumed and read later. Four kinds:
 * - `exec`: an ad-hoc command on each device;
 * - bulk `rotate`: each device's `rotate-credentials` command; the store records the rotation of
 *   every device that completed, when the run ends;
 * - bulk `revoke`: the revocations are recorded and the signed list written for all of them first
 *   (as `revoke DEVICE-ID` does), then each account is shut out on the server;
 * - `update`: a signed release through each device's `update` command, then its outcome (update.ts).
 * The devices are fixed when the job is created; revoked ones are left out of exec, rotate and update.
 */
import { ProvisioningError } from "../errors.js";
import { type Amount, type Job, type JobCounts, type JobKind, type JobSpec, newJobId } from "../jobs/job.js";
import type { JobStore } from "../jobs/job-store.js";
import { type JobAction, JobRunner } from "../jobs/runner.js";
import { type Selector, selectDevices } from "../selector.js";
import { type DeviceRecord, markRevoked, markRotated } from "../store.js";
import { NODE_ROTATE_CREDENTIALS } from "../xmpp-admin.js";
import type { AccountConnection } from "./accounts.js";
import { publishRevocations, type RevocationOutput } from "./revocations.js";
import { shutOut } from "./revoke.js";
import { UPDATE_NODE, updateAction } from "./update.js";
import type { FleetServices } from "./services.js";

export interface JobBounds {
  concurrency: number;
  deviceTimeoutMs: number;
  /** How long offline devices are waited for, from now; 0: reported offline at once. */
  waitMs: number;
  maxFailures?: Amount;
  batch?: Amount;
}

export interface ExecRequest extends JobBounds {
  selector: Selector;
  node: string;
  fields: Record<string, string | string[]>;
}

function leaveOutRevoked(picked: DeviceRecord[], services: FleetServices): DeviceRecord[] {
  const revoked = picked.filter((d) => d.state === "revoked");
  if (revoked.length > 0)
    services.progress(
      `leaving out ${revoked.length} revoked device(s) (${revoked
        .slice(0, 5)
        .map((d) => d.id)
        .join(", ")}${revoked.length > 5 ? ", ..." : ""}): they have no account`,
    );
  return picked.filter((d) => d.state !== "revoked");
}

function saveNewJob(
  kind: JobKind,
  what: {
    node: string;
    fields: Record<string, string | string[]>;
    disable?: boolean;
    revokedBefore?: string[];
    release?: { version: string };
  },
  selector: Selector,
  bounds: JobBounds,
  devices: DeviceRecord[],
  services: FleetServices,
  jobs: JobStore,
): Job {
  if (devices.length === 0) throw new ProvisioningError("device_unknown", "the selector picks no device for this job");
  const now = services.now();
  const spec: JobSpec = {
    kind,
    node: what.node,
    fields: what.fields,
    selector,
    concurrency: bounds.concurrency,
    deviceTimeoutMs: bounds.deviceTimeoutMs,
    ...(bounds.waitMs > 0 ? { waitUntil: new Date(now.getTime() + bounds.waitMs).toISOString() } : {}),
    ...(bounds.maxFailures ? { maxFailures: bounds.maxFailures } : {}),
    ...(bounds.batch ? { batch: bounds.batch } : {}),
    ...(what.disable ? { disable: true } : {}),
    ...(what.revokedBefore?.length ? { revokedBefore: what.revokedBefore } : {}),
    ...(what.release ? { release: what.release } : {}),
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

export function createExecJob(req: ExecRequest, services: FleetServices, jobs: JobStore): Job {
  const devices = leaveOutRevoked(selectDevices(services.store.read(), req.selector, services.now()), services);
  return saveNewJob("command", { node: req.node, fields: req.fields }, req.selector, req, devices, services, jobs);
}

export interface UpdateJobRequest extends JobBounds {
  selector: Selector;
  version: string;
  fields: Record<string, string | string[]>;
}

/** The `update` command with the release on every selected (not revoked) device; see usecases/update.ts. */
export function createUpdateJob(req: UpdateJobRequest, services: FleetServices, jobs: JobStore): Job {
  const devices = leaveOutRevoked(selectDevices(services.store.read(), req.selector, services.now()), services);
  return saveNewJob(
    "update",
    { node: UPDATE_NODE, fields: req.fields, release: { version: req.version } },
    req.selector,
    req,
    devices,
    services,
    jobs,
  );
}

export function createRotateJob(selector: Selector, bounds: JobBounds, services: FleetServices, jobs: JobStore): Job {
  const devices = leaveOutRevoked(selectDevices(services.store.read(), selector, services.now()), services);
  return saveNewJob("rotate", { node: NODE_ROTATE_CREDENTIALS, fields: {} }, selector, bounds, devices, services, jobs);
}

/**
 * Records every selected device as revoked and writes the signed list (so the list names them all
 * even if the server is never reached), then saves the job that shuts their accounts out.
 */
export async function createRevokeJob(
  selector: Selector,
  disable: boolean,
  bounds: JobBounds,
  services: FleetServices,
  jobs: JobStore,
  revocations: RevocationOutput,
): Promise<Job> {
  const now = services.now();
  const revokedBefore: string[] = [];
  const devices = await services.store.update((data) => {
    const picked = selectDevices(data, selector, now);
    for (const d of picked)
      if (d.state === "revoked") revokedBefore.push(d.id);
      else markRevoked(data, d.id, now);
    return picked;
  });
  if (devices.length > 0) {
    const file = publishRevocations(services.store, now, revocations);
    services.progress(`${devices.length} revocation(s) recorded; signed list written to ${file}`);
  }
  return saveNewJob(
    "revoke",
    { node: "revoke", fields: {}, disable, revokedBefore },
    selector,
    bounds,
    devices,
    services,
    jobs,
  );
}

function actionFor(job: Job, connection: AccountConnection): JobAction {
  const { spec } = job;
  const devices = connection.devices;
  if (spec.kind === "revoke") {
    const disable = spec.disable === true;
    const before = new Set(spec.revokedBefore ?? []);
    return {
      needsOnline: false,
      run: async (d) => [
        `account ${await shutOut(connection.accounts, d.jid.split("/")[0]!, disable, before.has(d.id), () => undefined)}`,
      ],
    };
  }
  if (!devices) throw new ProvisioningError("usage", "this connection cannot reach devices (no device port)");
  if (spec.kind === "update") return updateAction(spec, devices);
  return { needsOnline: true, run: (d, timeoutMs) => devices.execute(d.jid, spec.node, spec.fields, timeoutMs) };
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
    let done: Job;
    try {
      const runner = new JobRunner(job, {
        online: (domains) =>
          connection.devices
            ? connection.devices.online(domains)
            : Promise.reject(new ProvisioningError("usage", "this connection cannot list online devices")),
        action: actionFor(job, connection),
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
        done = await runner.run();
      } finally {
        hooks.signal?.removeEventListener("abort", stop);
      }
    } finally {
      await connection.close();
    }
    if (done.spec.kind === "rotate") await recordRotations(done, services);
    return done;
  } finally {
    lock.release();
  }
}

/** The store learns every rotation the job completed (one transaction, whatever the job's size). */
async function recordRotations(job: Job, services: FleetServices): Promise<void> {
  const completed = job.devices.filter((d) => d.status === "completed" && d.endedAt);
  if (completed.length === 0) return;
  await services.store.update((data) => {
    for (const d of completed) {
      const rec = data.devices[d.id];
      if (rec && (!rec.rotatedAt || rec.rotatedAt < d.endedAt!)) markRotated(data, d.id, new Date(d.endedAt!));
    }
  });
}
