/**
 * `iot-fleet release build`: packs an installed agent directory (what docs/deployment.md puts in
 * /opt/iot-agent: bin/, dist/, node_modules/, package.json, package-lock.json) into a gzip'd tar
 * and writes the manifest signed by the fleet CA beside it.
 *
 * The archive is made by the system's tar (GNU tar on Debian and Raspberry Pi OS), with sorted
 * names, owner 0 and a fixed mtime, so two builds of the same tree give the same bytes. The
 * version is package.json's; the release's own `bin/iot-agent.js --version` must start and report
 * the same one (AGENT_VERSION is compiled into the bundle), so a device that restarts into the
 * release reports what the manifest promised.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { writeFileAtomic } from "../../kernel/fsutil.js";
import { ProvisioningError } from "../errors.js";
import { isReleaseVersion, RELEASE_ENTRIES, RELEASE_NAME, type ReleaseManifest } from "./format.js";
import { type SignedRelease, signRelease } from "./manifest.js";

const run = promisify(execFile);

/** Headroom over archive + unpacked size that a device must have free (logs, spool growth). */
export const DEFAULT_HEADROOM_BYTES = 16 * 1024 * 1024;

export interface BuildReleaseOptions {
  /** The agent directory to pack (built, with production node_modules). */
  sourceDir: string;
  outDir: string;
  ca: Parameters<typeof signRelease>[1];
  /** The Node.js the addons in node_modules were built for. Default: this process's. */
  node?: ReleaseManifest["node"];
  headroomBytes?: number;
  now?: () => Date;
}

export interface BuiltRelease {
  manifest: ReleaseManifest;
  signed: SignedRelease;
  archiveFile: string;
  manifestFile: string;
}

function treeBytes(path: string): number {
  const st = lstatSync(path);
  if (st.isSymbolicLink()) return 0;
  if (!st.isDirectory()) return st.size;
  let n = 0;
  for (const name of readdirSync(path)) n += treeBytes(join(path, name));
  return n;
}

export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    createReadStream(file)
      .on("data", (c) => h.update(c))
      .on("error", reject)
      .on("end", () => resolve(h.digest("hex")));
  });
}

/** What the release's own `bin/iot-agent.js FLAG` prints, run from its bundle. */
async function askRelease(sourceDir: string, flag: string): Promise<string> {
  try {
    const out = await run(process.execPath, [join(sourceDir, "bin", "iot-agent.js"), flag], {
      env: { ...process.env, IOT_USE_DIST: "1" },
      timeout: 30_000,
    });
    return out.stdout;
  } catch (err) {
    throw new ProvisioningError(
      "usage",
      `bin/iot-agent.js ${flag} failed: ${(err as Error).message}`,
      {},
      { cause: err },
    );
  }
}

export async function buildRelease(o: BuildReleaseOptions): Promise<BuiltRelease> {
  for (const entry of RELEASE_ENTRIES)
    if (!existsSync(join(o.sourceDir, entry)))
      throw new ProvisioningError(
        "usage",
        `${join(o.sourceDir, entry)} is missing: a release is built from an installed agent directory (npm ci && npm run build && npm prune --omit=dev)`,
        { entry },
      );
  if (!existsSync(join(o.sourceDir, "dist", "iot-agent.cjs")))
    throw new ProvisioningError("usage", `${o.sourceDir}/dist has no iot-agent.cjs: run npm run build first`);
  const pkg = JSON.parse(readFileSync(join(o.sourceDir, "package.json"), "utf8")) as {
    name?: unknown;
    version?: unknown;
  };
  if (pkg.name !== RELEASE_NAME)
    throw new ProvisioningError("usage", `package.json names ${JSON.stringify(pkg.name)}, not ${RELEASE_NAME}`);
  if (!isReleaseVersion(pkg.version))
    throw new ProvisioningError(
      "usage",
      `package.json version ${JSON.stringify(pkg.version)} is not MAJOR.MINOR.PATCH`,
    );
  // The release's own launcher must start and answer: a smoke test of what ships.
  const reported = (await askRelease(o.sourceDir, "--version")).trim();
  let dataFormats: Record<string, number>;
  try {
    dataFormats = JSON.parse(await askRelease(o.sourceDir, "--data-formats")) as Record<string, number>;
  } catch (err) {
    throw new ProvisioningError("usage", `bin/iot-agent.js --data-formats did not print JSON`, {}, { cause: err });
  }
  if (reported !== `${RELEASE_NAME} ${pkg.version}`)
    throw new ProvisioningError(
      "usage",
      `bin/iot-agent.js --version says ${JSON.stringify(reported)}, package.json ${pkg.version}: rebuild dist after changing the version`,
    );

  const version = pkg.version;
  const node = o.node ?? { abi: process.versions.modules, platform: process.platform, arch: process.arch };
  mkdirSync(o.outDir, { recursive: true });
  const base = `${RELEASE_NAME}-${version}-node${node.abi}-${node.platform}-${node.arch}`;
  const archiveFile = join(o.outDir, `${base}.tar.gz`);
  const manifestFile = join(o.outDir, `${base}.manifest.json`);
  try {
    await run(
      "tar",
      [
        "--sort=name",
        "--owner=0",
        "--group=0",
        "--numeric-owner",
        "--mtime=@0",
        "-czf",
        archiveFile,
        "-C",
        o.sourceDir,
        ...RELEASE_ENTRIES,
      ],
      { env: { ...process.env, GZIP: "-n" } },
    );
  } catch (err) {
    throw new ProvisioningError(
      "store_io",
      `tar could not pack ${o.sourceDir}: ${(err as Error).message}`,
      {},
      { cause: err },
    );
  }
  const size = statSync(archiveFile).size;
  const unpackedBytes = RELEASE_ENTRIES.reduce((n, e) => n + treeBytes(join(o.sourceDir, e)), 0);
  const manifest: ReleaseManifest = {
    name: RELEASE_NAME,
    version,
    node,
    archive: { file: `${base}.tar.gz`, size, sha256: await sha256File(archiveFile), unpackedBytes },
    minFreeBytes: size + unpackedBytes + (o.headroomBytes ?? DEFAULT_HEADROOM_BYTES),
    dataFormats,
    createdAt: (o.now ?? (() => new Date()))().toISOString(),
  };
  const signed = signRelease(manifest, o.ca);
  writeFileAtomic(manifestFile, `${JSON.stringify(signed, null, 2)}\n`, 0o644);
  return { manifest, signed, archiveFile, manifestFile };
}
