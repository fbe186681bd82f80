/** What every job command shares: its bounds read from the options, and a run with progress and Ctrl-C. */
import { type Amount, type Job, parseAmount } from "../jobs/job.js";
import type { JobStore } from "../jobs/job-store.js";
import { type JobBounds, runJob } from "../usecases/jobs.js";
import { type CommandName, parseDuration, usageError } from "./args.js";
import type { Context } from "./context.js";
import { reportJob } from "./job-report.js";
import { ProgressView } from "./progress.js";

/** A whole-number option within 1..max, or its fallback when absent; a usage error otherwise. */
export function intOption(
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

function amountOption(ctx: Context, name: "max-failures" | "batch", command: CommandName): Amount | undefined {
  const raw = ctx.opts.string(name);
  if (raw === undefined) return undefined;
  const a = parseAmount(raw);
  if (!a || (name === "batch" && ("count" in a ? a.count : a.percent) === 0))
    throw usageError(`--${name} must be a number of devices or a percentage (e.g. 3 or 10%)`, command);
  return a;
}

export function jobBoundsFrom(ctx: Context, command: CommandName): JobBounds {
  // --poll is read when the job runs; checked here so a bad value refuses before a job is saved.
  intOption(ctx, "poll", 15, 600, command);
  const wait = ctx.opts.string("wait");
  const bounds: JobBounds = {
    concurrency: intOption(ctx, "concurrency", 16, 256, command),
    deviceTimeoutMs: intOption(ctx, "device-timeout", 30, 600, command) * 1000,
    waitMs: wait === undefined || wait === "0" ? 0 : parseDuration(wait),
  };
  const maxFailures = amountOption(ctx, "max-failures", command);
  if (maxFailures) bounds.maxFailures = maxFailures;
  const batch = amountOption(ctx, "batch", command);
  if (batch) bounds.batch = batch;
  return bounds;
}

/** Runs a job with a progress view and Ctrl-C handling; prints its report and returns the exit status. */
export async function runWithProgress(ctx: Context, jobs: JobStore, job: Job, command: CommandName): Promise<number> {
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
