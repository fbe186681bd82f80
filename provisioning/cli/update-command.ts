/**
 * `iot-fleet update SELECTOR --release MANIFEST (--share JID | --url URL)`: the manifest checked
 * against this fleet's CA, the archive uploaded if asked, then a job (usecases/update.ts) run
 * with progress like exec.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { CA_CERT_FILE } from "../ca.js";
import { JobStore } from "../jobs/job-store.js";
import { verifyRelease } from "../release/manifest.js";
import { createUpdateJob } from "../usecases/jobs.js";
import { updateFields } from "../usecases/update.js";
import { usageError } from "./args.js";
import type { Context } from "./context.js";
import { describeJob } from "./job-report.js";
import { jobBoundsFrom, runWithProgress } from "./job-run.js";
import { selectorFrom } from "./selector-options.js";

export async function updateCommand(ctx: Context, p: string[]): Promise<number> {
  if (p.length > 0) throw usageError(`unexpected argument ${JSON.stringify(p[0])}`, "update");
  const selector = selectorFrom(ctx.opts, "update", true);
  const releaseFile = ctx.opts.string("release");
  if (!releaseFile) throw usageError("--release MANIFEST is needed (from iot-fleet release build)", "update");
  const share = ctx.opts.string("share");
  let url = ctx.opts.string("url");
  if (!share === !url) throw usageError("give either --share JID (upload the archive) or --url URL", "update");
  if (url && !/^https?:\/\/\S+$/.test(url))
    throw usageError(`--url ${JSON.stringify(url)} is not an http(s) URL`, "update");
  let text: string;
  try {
    text = readFileSync(resolve(releaseFile), "utf8");
  } catch (err) {
    throw usageError(`cannot read --release ${releaseFile}: ${(err as Error).message}`, "update");
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw usageError(`--release ${releaseFile} is not JSON: ${(err as Error).message}`, "update");
  }
  // The devices check it too; refusing here spares the fleet a job that every device would refuse.
  const manifest = verifyRelease(doc, { caCertPem: readFileSync(join(ctx.caDir, CA_CERT_FILE), "utf8") });
  const bounds = jobBoundsFrom(ctx, "update");
  if (ctx.opts.string("device-timeout") === undefined) bounds.deviceTimeoutMs = 300_000;
  if (share) {
    const archive = join(dirname(resolve(releaseFile)), manifest.archive.file);
    if (!existsSync(archive)) throw usageError(`the archive ${archive} is not beside the manifest`, "update");
    const connection = await ctx.services().connect();
    try {
      if (!connection.upload) throw usageError("this connection cannot upload files", "update");
      ctx.progress(`uploading ${manifest.archive.file} (${manifest.archive.size} bytes) to ${share}...`);
      const up = await connection.upload(share, archive);
      ctx.progress(`uploaded in ${up.ms} ms: ${up.getUrl}`);
      url = up.getUrl;
    } finally {
      await connection.close();
    }
  }
  const jobs = new JobStore(ctx.home);
  const job = createUpdateJob(
    {
      selector,
      version: manifest.version,
      fields: updateFields(JSON.stringify(doc, null, 2), url!, ctx.opts.flag("allow-downgrade")),
      ...bounds,
    },
    ctx.services(),
    jobs,
  );
  ctx.progress(describeJob(job));
  return runWithProgress(ctx, jobs, job, "update");
}
