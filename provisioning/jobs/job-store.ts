/**
 * Jobs on disk: HOME/jobs/<id>.json (0600, replaced atomically and durably like the fleet store),
 * one file per job so that a job's progress never rewrites the fleet store, and a lock file per
 * job (<id>.lock) held by the process that runs it, so one job never runs twice at once.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ProvisioningError } from "../errors.js";
import { acquireLock, ensurePrivateDir, type FileLock, writeFileAtomic } from "../fsutil.js";
import { FINAL_STATUSES, JOB_ID, JOB_VERSION, type Job } from "./job.js";

const STATUSES = new Set([...FINAL_STATUSES, "pending", "waiting", "running"]);
const STATES = new Set(["running", "finished", "aborted", "interrupted"]);

function corrupt(file: string, why: string): never {
  throw new ProvisioningError("store_corrupt", `job file ${file} is corrupt: ${why}`, { file });
}

function validate(file: string, raw: unknown): Job {
  const j = raw as Partial<Job> | null;
  if (typeof j !== "object" || j === null || Array.isArray(j)) corrupt(file, "not a JSON object");
  if (j.version !== JOB_VERSION) corrupt(file, `unsupported version ${JSON.stringify(j.version)}`);
  if (typeof j.id !== "string" || !JOB_ID.test(j.id)) corrupt(file, "bad id");
  if (!STATES.has(j.state as string)) corrupt(file, `bad state ${JSON.stringify(j.state)}`);
  const s = j.spec;
  if (
    !s ||
    !["command", "rotate", "revoke", "update"].includes(s.kind) ||
    (s.kind === "update" && typeof s.release?.version !== "string") ||
    typeof s.node !== "string" ||
    typeof s.fields !== "object" ||
    typeof s.concurrency !== "number" ||
    typeof s.deviceTimeoutMs !== "number"
  )
    corrupt(file, "bad spec");
  if (!Array.isArray(j.devices)) corrupt(file, "devices is not a list");
  for (const d of j.devices)
    if (!d || typeof d.id !== "string" || typeof d.jid !== "string" || !STATUSES.has(d.status))
      corrupt(file, `bad device entry ${JSON.stringify(d?.id)}`);
  return j as Job;
}

export class JobStore {
  readonly dir: string;
  constructor(home: string) {
    this.dir = join(home, "jobs");
  }

  file(id: string): string {
    return join(this.dir, `${id}.json`);
  }

  /** Writes the job (created or changed) atomically; a power cut leaves the previous version. */
  save(job: Job, now: Date): void {
    ensurePrivateDir(this.dir);
    job.updatedAt = now.toISOString();
    writeFileAtomic(this.file(job.id), `${JSON.stringify(job)}\n`);
  }

  read(id: string): Job {
    if (!JOB_ID.test(id))
      throw new ProvisioningError("usage", `${JSON.stringify(id)} is not a job id (j-YYYYMMDD-HHMMSS-xxxx)`);
    const file = this.file(id);
    if (!existsSync(file)) throw new ProvisioningError("job_unknown", `no job ${id} (${file})`, { jobId: id });
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(file, "utf8"));
    } catch (err) {
      corrupt(file, (err as Error).message);
    }
    return validate(file, raw);
  }

  /** Every job, newest first. */
  list(): Job[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .filter((f) => f.endsWith(".json") && JOB_ID.test(f.slice(0, -5)))
      .sort()
      .reverse()
      .map((f) => this.read(f.slice(0, -5)));
  }

  /** The job's run lock: refused at once (`job_running`) while another process runs it. */
  async lock(id: string): Promise<FileLock> {
    ensurePrivateDir(this.dir);
    try {
      return await acquireLock(join(this.dir, `${id}.lock`), 0);
    } catch (err) {
      if ((err as { code?: string }).code === "store_locked")
        throw new ProvisioningError(
          "job_running",
          `job ${id} is being run by another iot-fleet process (${(err as Error).message})`,
          { jobId: id },
          { cause: err },
        );
      throw err;
    }
  }
}
