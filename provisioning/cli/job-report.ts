/** A job's per-device result table, its summary and its exit status: `exec` and `job` print the same. */
import { EXIT } from "../exit-codes.js";
import { countStatuses, formatAmount, type Job } from "../jobs/job.js";
import { describeSelector } from "../selector.js";
import type { Context } from "./context.js";
import { formatTable, truncate } from "./format.js";
import { describeCounts } from "./progress.js";

const NOTE_WIDTH = 100;

export function describeJob(job: Job): string {
  const s = job.spec;
  // An update's manifest is tens of lines: name the release and where it comes from instead.
  const fields = s.release
    ? [`release ${s.release.version}`, `from ${String(s.fields.url)}`]
    : Object.entries(s.fields).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(",") : v}`);
  const bounds = [
    `concurrency ${s.concurrency}`,
    `device timeout ${s.deviceTimeoutMs / 1000} s`,
    s.waitUntil ? `waits for offline devices until ${s.waitUntil}` : "no wait for offline devices",
    ...(s.maxFailures ? [`max failures ${formatAmount(s.maxFailures)}`] : []),
    ...(s.batch ? [`waves of ${formatAmount(s.batch)}`] : []),
  ];
  return `job ${job.id}: ${s.node}${fields.length ? ` ${fields.join(" ")}` : ""} on ${job.devices.length} device(s) (${describeSelector(s.selector)}); ${bounds.join(", ")}`;
}

/** Prints the result (table or --json) and returns the exit status: 0 only when every device completed. */
export function reportJob(ctx: Context, job: Job): number {
  const counts = countStatuses(job.devices);
  const complete = counts.completed === job.devices.length;
  if (ctx.opts.flag("json")) ctx.io.out(JSON.stringify(job));
  else {
    const rows = [["DEVICE", "RESULT", "NOTE"]];
    for (const d of job.devices) rows.push([d.id, d.status, truncate(d.note ?? "", NOTE_WIDTH)]);
    for (const line of formatTable(rows)) ctx.io.out(line);
    ctx.io.out(`${describeJob(job)}\n${job.state}: ${describeCounts(counts)}`);
    if (job.abortReason) ctx.io.out(`aborted: ${job.abortReason}`);
  }
  if (job.state === "interrupted" || job.state === "running")
    ctx.progress(`job ${job.id} is not finished: resume it with 'iot-fleet job ${job.id} --resume'`);
  return complete ? EXIT.ok : EXIT.incomplete;
}
