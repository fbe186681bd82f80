/** `iot-fleet release build`: a signed release of an installed agent directory (provisioning/release/). */
import { join, resolve } from "node:path";
import { EXIT } from "../exit-codes.js";
import { buildRelease } from "../release/build.js";
import { noPositionals } from "./args.js";
import type { Context } from "./context.js";
import { formatBytes } from "./format.js";

export async function releaseBuild(ctx: Context, p: string[]): Promise<number> {
  noPositionals(p, "release build");
  const sourceDir = resolve(ctx.opts.string("from") ?? ".");
  const outDir = resolve(ctx.opts.string("out") ?? join(ctx.home, "releases"));
  const ca = ctx.loadCa();
  ctx.progress(`packing ${sourceDir} ...`);
  const r = await buildRelease({ sourceDir, outDir, ca, now: () => ctx.now() });
  const m = r.manifest;
  ctx.print(
    { manifest: m, archiveFile: r.archiveFile, manifestFile: r.manifestFile },
    [
      `release ${m.version} for Node ABI ${m.node.abi} on ${m.node.platform}-${m.node.arch}`,
      `  archive   ${r.archiveFile} (${formatBytes(m.archive.size)}, unpacks to ${formatBytes(m.archive.unpackedBytes)})`,
      `  sha256    ${m.archive.sha256}`,
      `  manifest  ${r.manifestFile} (signed by the fleet CA)`,
      `  a device needs ${formatBytes(m.minFreeBytes)} free`,
    ].join("\n"),
  );
  return EXIT.ok;
}
