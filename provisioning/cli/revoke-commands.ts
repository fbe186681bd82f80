/**
 * `iot-fleet revoke DEVICE-ID`, `iot-fleet revoke SELECTOR` (every selected device, as a job after
 * recording them all) and `iot-fleet revocations --out FILE`.
 */
import { resolve } from "node:path";
import { EXIT } from "../exit-codes.js";
import { publishRevocations } from "../usecases/revocations.js";
import { revokeDevice } from "../usecases/revoke.js";
import { JobStore } from "../jobs/job-store.js";
import { isEmptySelector } from "../selector.js";
import { createRevokeJob } from "../usecases/jobs.js";
import { noPositionals, oneDevice, usageError } from "./args.js";
import type { Context } from "./context.js";
import { describeJob } from "./job-report.js";
import { jobBoundsFrom, runWithProgress } from "./job-run.js";
import { selectorFrom } from "./selector-options.js";

export async function revokeCommand(ctx: Context, p: string[]): Promise<number> {
  if (p.length === 0 && !isEmptySelector(selectorFrom(ctx.opts, "revoke", false))) return revokeMany(ctx);
  const id = oneDevice(p, "revoke");
  const localOnly = ctx.opts.flag("local-only");
  const r = await revokeDevice(
    { id, disable: ctx.opts.flag("disable"), localOnly },
    ctx.services(),
    ctx.revocationOutput(ctx.opts.string("export")),
  );
  if (localOnly)
    ctx.print(
      { deviceId: id, revoked: true, account: r.account },
      `${id} revoked locally (account not deleted: --local-only)`,
    );
  else ctx.print({ deviceId: id, revoked: true, account: r.account }, `${id} revoked: account ${r.jid} ${r.account}`);
  return EXIT.ok;
}

export function revocationsCommand(ctx: Context, p: string[]): number {
  noPositionals(p, "revocations");
  const out = ctx.opts.string("out");
  if (!out) throw usageError("--out FILE is required", "revocations");
  const home = publishRevocations(ctx.store, ctx.now(), ctx.revocationOutput(out));
  ctx.print({ file: resolve(out), home }, `revocation list written to ${resolve(out)}`);
  return EXIT.ok;
}

/**
 * Records every selected device as revoked and signs the list first; then (unless --local-only)
 * shuts each account out on the server as a job, with per-device results.
 */
async function revokeMany(ctx: Context): Promise<number> {
  const selector = selectorFrom(ctx.opts, "revoke", true);
  const jobs = new JobStore(ctx.home);
  const job = await createRevokeJob(
    selector,
    ctx.opts.flag("disable"),
    jobBoundsFrom(ctx, "revoke"),
    ctx.services(),
    jobs,
    ctx.revocationOutput(ctx.opts.string("export")),
  );
  if (ctx.opts.flag("local-only")) {
    ctx.print(
      { revoked: job.devices.map((d) => d.id), job: job.id },
      `${job.devices.length} device(s) revoked locally (accounts not touched: --local-only); 'iot-fleet job ${job.id} --resume' shuts them out on the server`,
    );
    return EXIT.ok;
  }
  ctx.progress(describeJob(job));
  return runWithProgress(ctx, jobs, job, "revoke");
}
