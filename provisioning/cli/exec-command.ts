/**
 * `iot-fleet exec SELECTOR COMMAND [FIELD=VALUE ...]`, `iot-fleet jobs`, `iot-fleet job ID
 * [--resume]`: options -> usecases/exec.ts -> progress on stderr, the per-device table (or the job
 * as JSON) on stdout, exit 0 only when every device completed (7 otherwise).
 */
import { EXIT } from "../exit-codes.js";
import { type Amount, countStatuses, type Job, parseAmount } from "../jobs/job.js";
import { JobStore } from "../jobs/job-store.js";
import { createExecJob, runJob } from "../usecases/exec.js";
import { type CommandName, parseDuration, usageError } from "./args.js";
import type { Context } from "./context.js";
import { formatTable } from "./format.js";
import { describeJob, reportJob } from "./job-report.js";
import { describeCounts, ProgressView } from "./progress.js";
import { selectorFrom } from "./selector-options.js";

/** XEP-0050 node names: plain words or URIs with a fragment. */
const NODE = /^[A-Za-z0-9][A-Za-z0-9_.#:/@-]{0,127}$/;
const FIELD = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;

function parseFields(texts: readonly string[]): Record<string, string | string[]> {
  const fields: Record<string, string | string[]> = {};
  for (const t of texts) {
    const eq = t.indexOf("=");
    const name = eq > 0 ? t.slice(0, eq) : "";
    if (!FIELD.test(name)) throw usageError(`${JSON.stringify(t)} is not FIELD=VALUE`, "exec");
    const value = t.slice(eq + 1);
    if (value.length > 1024) throw usageError(`the value of ${name} is longer than 1024 characters`, "exec");
    const had = fields[name];
    // A field given twice is a multi-valued field (list-multi, jid-multi).
    fields[name] = had === undefined ? value : [...(Array.isArray(had) ? had : [had]), value];
  }
  return fields;
}

function intOption(
  ctx: Context,
  name: "concurrency" | "device-timeout" | "poll",
  fallback: number,
  max: number,
  command: CommandName,
): number {
  const raw = ctx.opts.string(name);
  const n = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > max) throw usageError(`--${name} must be 1..${max}`, command);
  return n;
}

function amountOption(ctx: Context, name: "max-failures" | "batch"): Amount | undefined {
  const raw = ctx.opts.string(name);
  if (raw === undefined) return undefined;
  const a = parseAmount(raw);
  if (!a || (name === "batch" && ("count" in a ? a.count : a.percent) === 0))
    throw usageError(`--${name} must be a number of devices or a percentage (e.g. 3 or 10%)`, "exec");
  return a;
}

/** Runs a job with a progress view and Ctrl-C handling; prints its report. */
async function runWithProgress(ctx: Context, jobs: JobStore, job: Job, command: CommandName): Promise<number> {
  const view = new ProgressView(ctx.io, job.devices.length, job.spec.node);
  const abort = new AbortController();
  const off = ctx.io.onInterrupt?.(() => {
    view.end();
    ctx.progress("interrupted: waiting for the commands in flight, then saving the job (Ctrl-C again to quit now)");
    abort.abort();
  });
  let done: Job;
  try {
    done = await runJob(job.id, ctx.services(), jobs, {
      onProgress: (c) => view.update(c),
      signal: abort.signal,
      pollMs: intOption(ctx, "poll", 15, 600, command) * 1000,
    });
  } finally {
    off?.();
    view.end();
  }
  return reportJob(ctx, done);
}

export async function execCommand(ctx: Context, p: string[]): Promise<number> {
  const selector = selectorFrom(ctx.opts, "exec", true);
  const [node, ...rest] = p;
  if (!node) throw usageError("COMMAND is needed (the device's ad-hoc command node, e.g. set-sampling)", "exec");
  if (!NODE.test(node)) throw usageError(`${JSON.stringify(node)} is not an ad-hoc command node`, "exec");
  const wait = ctx.opts.string("wait");
  const jobs = new JobStore(ctx.home);
  const job = createExecJob(
    {
      selector,
      node,
      fields: parseFields(rest),
      concurrency: intOption(ctx, "concurrency", 16, 256, "exec"),
      deviceTimeoutMs: intOption(ctx, "device-timeout", 30, 600, "exec") * 1000,
      waitMs: wait === undefined || wait === "0" ? 0 : parseDuration(wait),
      maxFailures: amountOption(ctx, "max-failures"),
      batch: amountOption(ctx, "batch"),
    },
    ctx.services(),
    jobs,
  );
  ctx.progress(describeJob(job));
  return runWithProgress(ctx, jobs, job, "exec");
}

export function jobsCommand(ctx: Context, p: string[]): number {
  if (p.length > 0) throw usageError(`unexpected argument ${JSON.stringify(p[0])}`, "jobs");
  const all = new JobStore(ctx.home).list();
  if (ctx.opts.flag("json")) {
    ctx.io.out(
      JSON.stringify(
        all.map((j) => ({
          id: j.id,
          createdAt: j.createdAt,
          node: j.spec.node,
          state: j.state,
          counts: countStatuses(j.devices),
        })),
      ),
    );
    return EXIT.ok;
  }
  if (all.length === 0) {
    ctx.io.out("(no jobs yet: iot-fleet exec SELECTOR COMMAND ...)");
    return EXIT.ok;
  }
  const rows = [["JOB", "CREATED", "COMMAND", "DEVICES", "STATE", "RESULTS"]];
  for (const j of all)
    rows.push([
      j.id,
      j.createdAt,
      j.spec.node,
      String(j.devices.length),
      j.state,
      describeCounts(countStatuses(j.devices)),
    ]);
  for (const line of formatTable(rows)) ctx.io.out(line);
  return EXIT.ok;
}

export async function jobCommand(ctx: Context, p: string[]): Promise<number> {
  if (p.length !== 1) throw usageError("exactly one JOB-ID is needed (see 'iot-fleet jobs')", "job");
  const jobs = new JobStore(ctx.home);
  const job = jobs.read(p[0]!);
  if (!ctx.opts.flag("resume")) return reportJob(ctx, job);
  ctx.progress(`resuming ${describeJob(job)}`);
  return runWithProgress(ctx, jobs, job, "job");
}
