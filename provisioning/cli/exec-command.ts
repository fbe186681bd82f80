/**
 * `iot-fleet exec SELECTOR COMMAND [FIELD=VALUE ...]`, `iot-fleet jobs`, `iot-fleet job ID
 * [--resume]`: options -> usecases/jobs.ts -> progress on stderr, the per-device table (or the job
 * as JSON) on stdout, exit 0 only when every device completed (7 otherwise).
 */
import { EXIT } from "../exit-codes.js";
import { countStatuses } from "../jobs/job.js";
import { JobStore } from "../jobs/job-store.js";
import { createExecJob } from "../usecases/jobs.js";
import { usageError } from "./args.js";
import type { Context } from "./context.js";
import { formatTable } from "./format.js";
import { describeJob, reportJob } from "./job-report.js";
import { jobBoundsFrom, runWithProgress } from "./job-run.js";
import { describeCounts } from "./progress.js";
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

export async function execCommand(ctx: Context, p: string[]): Promise<number> {
  const selector = selectorFrom(ctx.opts, "exec", true);
  const [node, ...rest] = p;
  if (!node) throw usageError("COMMAND is needed (the device's ad-hoc command node, e.g. set-sampling)", "exec");
  if (!NODE.test(node)) throw usageError(`${JSON.stringify(node)} is not an ad-hoc command node`, "exec");
  const jobs = new JobStore(ctx.home);
  const job = createExecJob(
    { selector, node, fields: parseFields(rest), ...jobBoundsFrom(ctx, "exec") },
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
