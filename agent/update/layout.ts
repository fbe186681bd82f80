/**
 * Where a device keeps its releases, and the one switch between them:
 *
 *   ROOT/releases/0.2.0/     a complete release (it holds .release.json, written last)
 *   ROOT/releases/.staging-0.2.0/   an unpack under way (removed and redone after a power cut)
 *   ROOT/current  -> releases/0.2.0  what the service starts (deploy/iot-agent.service)
 *   ROOT/previous -> releases/0.1.0  what was current before the last switch
 *
 * No `current` means the base install runs (the launcher's own directory, /opt/iot-agent).
 *
 * A release becomes visible under its version only by a rename after it was unpacked and flushed,
 * and `current` changes only by renaming a new symlink over it, then flushing the directory: a
 * power cut at any point leaves `current` at the old or the new complete release, never between.
 * ROOT is the service's state directory (/var/lib/iot-agent), the one place the agent may write.
 */
import { execFile } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
} from "node:fs";
import { basename, join } from "node:path";
import { promisify } from "node:util";
import { fsyncDirSync, writeFileAtomic } from "../../kernel/fsutil.js";
import { isReleaseVersion, RELEASE_ENTRIES, type ReleaseManifest } from "../../provisioning/release/format.js";
import { UpdateError } from "./errors.js";

const run = promisify(execFile);
const MARKER = ".release.json";
const TOP_LEVEL = new Set<string>(RELEASE_ENTRIES);

/** Checks an archive's member names: relative, no "..", only a release's top-level entries. */
export function checkArchiveNames(names: readonly string[]): void {
  for (const raw of names) {
    const name = raw.replace(/^\.\//, "");
    if (name === "" || name === ".") continue;
    const parts = name.split("/").filter((p) => p !== "");
    if (raw.startsWith("/") || parts.includes("..") || !TOP_LEVEL.has(parts[0] ?? ""))
      throw new UpdateError(
        "update_archive_invalid",
        `the archive holds ${JSON.stringify(raw)}, outside a release's layout`,
        {
          member: raw,
        },
      );
  }
}

export class ReleaseLayout {
  readonly releasesDir: string;
  readonly currentLink: string;
  readonly previousLink: string;

  constructor(readonly root: string) {
    this.releasesDir = join(root, "releases");
    this.currentLink = join(root, "current");
    this.previousLink = join(root, "previous");
  }

  dirOf(version: string): string {
    return join(this.releasesDir, version);
  }

  /** Whether `version` is unpacked completely. */
  has(version: string): boolean {
    return isReleaseVersion(version) && existsSync(join(this.dirOf(version), MARKER));
  }

  /** The version `link` points to, if it points to a release. */
  private target(link: string): string | undefined {
    try {
      const v = basename(readlinkSync(link));
      return isReleaseVersion(v) ? v : undefined;
    } catch {
      return undefined;
    }
  }

  current(): string | undefined {
    return this.target(this.currentLink);
  }

  previous(): string | undefined {
    return this.target(this.previousLink);
  }

  /** Complete releases, any order. */
  installed(): string[] {
    if (!existsSync(this.releasesDir)) return [];
    return readdirSync(this.releasesDir).filter((v) => this.has(v));
  }

  /**
   * Unpacks a verified archive as releases/VERSION. An existing complete copy is kept as it is (the
   * same version is the same signed bytes). Throws UpdateError.
   */
  async install(archive: string, manifest: ReleaseManifest): Promise<string> {
    const { version } = manifest;
    if (this.has(version)) return this.dirOf(version);
    mkdirSync(this.releasesDir, { recursive: true, mode: 0o700 });
    let names: string[];
    try {
      names = (await run("tar", ["-tzf", archive], { maxBuffer: 64 * 1024 * 1024 })).stdout.split("\n").filter(Boolean);
    } catch (err) {
      throw new UpdateError(
        "update_archive_invalid",
        `the archive cannot be listed: ${(err as Error).message}`,
        {},
        { cause: err },
      );
    }
    checkArchiveNames(names);
    const staging = join(this.releasesDir, `.staging-${version}`);
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging, { mode: 0o700 });
    try {
      await run("tar", ["-xzf", archive, "-C", staging, "--no-same-owner", "--no-same-permissions"]);
      // Every unpacked file on stable storage before the release can be switched to.
      await run("sync", ["-f", staging]);
      writeFileAtomic(join(staging, MARKER), `${JSON.stringify(manifest, null, 2)}\n`, 0o644);
      renameSync(staging, this.dirOf(version));
      fsyncDirSync(this.releasesDir);
    } catch (err) {
      rmSync(staging, { recursive: true, force: true });
      if (err instanceof UpdateError) throw err;
      throw new UpdateError(
        "update_io",
        `unpacking ${version} failed: ${(err as Error).message}`,
        { version },
        { cause: err },
      );
    }
    return this.dirOf(version);
  }

  /** Points `link` at releases/VERSION by renaming a fresh symlink over it. */
  private relink(link: string, version: string): void {
    const tmp = `${link}.${process.pid}.tmp`;
    rmSync(tmp, { force: true });
    symlinkSync(join("releases", version), tmp);
    renameSync(tmp, link);
  }

  /** Makes VERSION current; the old current becomes previous. Both links flushed before returning. */
  switchTo(version: string): void {
    if (!this.has(version))
      throw new UpdateError("update_io", `release ${version} is not unpacked completely`, { version });
    const old = this.current();
    if (old !== undefined && old !== version) this.relink(this.previousLink, old);
    this.relink(this.currentLink, version);
    fsyncDirSync(this.root);
  }

  /**
   * Goes back to `version`: its release if it is unpacked here, else the base install the
   * launcher runs when there is no `current` (the version the device was installed with).
   */
  restore(version: string): void {
    if (this.has(version)) {
      this.switchTo(version);
      return;
    }
    rmSync(this.currentLink, { force: true });
    fsyncDirSync(this.root);
  }

  /** Removes every release but `keep`, and any unfinished unpack. */
  prune(keep: readonly string[]): string[] {
    const removed: string[] = [];
    if (!existsSync(this.releasesDir)) return removed;
    for (const name of readdirSync(this.releasesDir)) {
      if (keep.includes(name)) continue;
      rmSync(join(this.releasesDir, name), { recursive: true, force: true });
      removed.push(name);
    }
    if (removed.length > 0) fsyncDirSync(this.releasesDir);
    return removed;
  }

  /** The manifest a complete release was installed from. */
  manifestOf(version: string): ReleaseManifest | undefined {
    try {
      return JSON.parse(readFileSync(join(this.dirOf(version), MARKER), "utf8")) as ReleaseManifest;
    } catch {
      return undefined;
    }
  }
}
