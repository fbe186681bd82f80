/**
 * `iot-fleet rotate DEVICE-ID [--admin-reset]`: options -> usecases/rotate.ts -> result line.
 * `iot-fleet rotate SELECTOR`: every selected device rotates, as a job (usecases/jobs.ts).
 */
import { resolve } from "node:path";
import { EXIT } from "../exit-codes.js";
import { resetDevicePassword, rotatableDevice, rotateDevice } from "../usecases/rotate.js";
import { JobStore } from "../jobs/job-store.js";
import { isEmptySelector } from "../selector.js";
import { createRotateJob } from "../usecases/jobs.js";
import { oneDevice, parseDuration, usageError } from "./args.js";
import { type Context, readSecretFile } from "./context.js";
import { describeJob } from "./job-report.js";
import { jobBoundsFrom, runWithProgress } from "./job-run.js";
import { selectorFrom } from "./selector-options.js";

export async function rotateCommand(ctx: Context, p: string[]): Promise<number> {
  if (p.length === 0 && !isEmptySelector(selectorFrom(ctx.opts, "rotate", false))) return rotateMany(ctx);
  const id = oneDevice(p, "rotate");
  // An unknown or revoked device is the answer, whatever else is wrong with the options.
  rotatableDevice(ctx.store.read(), id);
  if (!ctx.opts.flag("admin-reset")) {
    const r = await rotateDevice(id, ctx.services());
    ctx.print({ deviceId: id, rotated: true, note: r.note }, `${id}: ${r.note || "rotated"}`);
    return EXIT.ok;
  }
  const out = ctx.opts.string("out");
  if (!out) throw usageError("--admin-reset needs --out FILE for the new bundle", "rotate");
  const ca = ctx.loadCa();
  const server = ctx.bundleServer();
  const validForMs = parseDuration(ctx.opts.string("valid-for") ?? "7d");
  const csrFile = ctx.opts.string("csr");
  const bundleFile = resolve(out);
  const r = await resetDevicePassword(
    {
      id,
      server,
      csrPem: csrFile ? readSecretFile(csrFile, "CSR file") : undefined,
      adminJid: ctx.adminJid(),
      validForMs,
      bundleFile,
    },
    ca,
    ctx.services(),
  );
  ctx.print(
    { deviceId: id, reset: true, bundle: bundleFile, bundleId: r.bundleId },
    `password of ${r.jid} reset; re-enrol the device with ${out} (iot-agent enroll --force)`,
  );
  return EXIT.ok;
}

/** Each selected device changes its own password (rotate-credentials); the store records who did. */
async function rotateMany(ctx: Context): Promise<number> {
  if (ctx.opts.flag("admin-reset")) throw usageError("--admin-reset is for one DEVICE-ID at a time", "rotate");
  const jobs = new JobStore(ctx.home);
  const job = createRotateJob(
    selectorFrom(ctx.opts, "rotate", true),
    jobBoundsFrom(ctx, "rotate"),
    ctx.services(),
    jobs,
  );
  ctx.progress(describeJob(job));
  return runWithProgress(ctx, jobs, job, "rotate");
}
