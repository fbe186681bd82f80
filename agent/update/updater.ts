/**
 * The device's installer: takes a signed manifest and a download URL (the `update` command),
 * checks everything it can before downloading (check.ts), then in the background downloads,
 * unpacks, records the trial, switches `current` and asks the agent to restart into the release.
 * One update at a time. Loaded on demand (it verifies signatures, which loads node-forge): an agent
 * that is never updated never pays for it.
 */
import { mkdirSync, readFileSync, rmSync, statfsSync } from "node:fs";
import { join } from "node:path";
import { describeError } from "../../kernel/errors.js";
import type { Logger } from "../../kernel/log.js";
import type { ReleaseManifest } from "../../provisioning/release/format.js";
import type { TrustAnchor } from "../../provisioning/signed.js";
import { checkRelease, type RunningAgent } from "./check.js";
import type { UpdateConfig } from "./config.js";
import { downloadRelease } from "./download.js";
import { UpdateError } from "./errors.js";
import { READS } from "./formats.js";
import { ReleaseLayout } from "./layout.js";
import { writeUpdateState } from "./state.js";

export type UpdateStep = "downloading" | "unpacking" | "switching" | "restarting";

export interface UpdaterDeps {
  config: UpdateConfig;
  running: RunningAgent;
  /** The fleet CA certificate file (update.fleetCaFile, or the one enrolment saved). */
  fleetCaFile: string;
  /** Extra CA certificates for https downloads. */
  downloadCaFile?: string;
  log: Logger;
  /** Stops the agent and exits so that the service manager starts it again, into `current`. */
  restart: (reason: string) => void;
  now?: () => Date;
}

export interface UpdaterStatus {
  job?: { version: string; step: UpdateStep; since: string };
  lastFailure?: { version?: string; code: string; message: string; at: string };
}

export class Updater {
  private readonly layout: ReleaseLayout;
  private job: UpdaterStatus["job"];
  private lastFailure: UpdaterStatus["lastFailure"];
  private readonly now: () => Date;

  constructor(private readonly deps: UpdaterDeps) {
    this.layout = new ReleaseLayout(deps.config.dir);
    this.now = deps.now ?? (() => new Date());
  }

  status(): UpdaterStatus {
    return { ...(this.job ? { job: this.job } : {}), ...(this.lastFailure ? { lastFailure: this.lastFailure } : {}) };
  }

  /**
   * Checks the release and starts installing it; resolves with the manifest once accepted (the
   * install goes on in the background). Throws UpdateError when refused.
   */
  accept(doc: unknown, url: string, opts: { allowDowngrade?: boolean } = {}): ReleaseManifest {
    if (this.job)
      throw new UpdateError("update_busy", `an update to ${this.job.version} is ${this.job.step}`, { ...this.job });
    try {
      const manifest = this.check(doc, opts.allowDowngrade === true);
      this.job = { version: manifest.version, step: "downloading", since: this.now().toISOString() };
      void this.install(manifest, url);
      return manifest;
    } catch (err) {
      this.fail(err, undefined);
      throw err;
    }
  }

  private check(doc: unknown, allowDowngrade: boolean): ReleaseManifest {
    const { config } = this.deps;
    let trust: TrustAnchor;
    try {
      trust = { caCertPem: readFileSync(this.deps.fleetCaFile, "utf8") };
    } catch (err) {
      throw new UpdateError(
        "update_unavailable",
        `cannot read the fleet CA ${this.deps.fleetCaFile}`,
        {},
        { cause: err },
      );
    }
    mkdirSync(this.layout.root, { recursive: true, mode: 0o700 });
    const fs = statfsSync(this.layout.root);
    return checkRelease(doc, {
      trust,
      running: this.deps.running,
      allowDowngrade,
      maxDownloadBytes: config.maxDownloadBytes,
      freeBytes: fs.bavail * fs.bsize,
      reads: READS,
    });
  }

  private step(step: UpdateStep): void {
    if (this.job) this.job = { ...this.job, step, since: this.now().toISOString() };
  }

  private async install(m: ReleaseManifest, url: string): Promise<void> {
    const { config, log, running } = this.deps;
    const downloads = join(this.layout.root, "downloads");
    const archive = join(downloads, m.archive.file.replace(/[^A-Za-z0-9._-]/g, "_"));
    try {
      rmSync(downloads, { recursive: true, force: true });
      mkdirSync(downloads, { recursive: true, mode: 0o700 });
      log.info("update: downloading", { version: m.version, bytes: m.archive.size, url });
      const got = await downloadRelease({
        url,
        dest: archive,
        size: m.archive.size,
        sha256: m.archive.sha256,
        timeoutMs: config.downloadTimeoutMs,
        ...(this.deps.downloadCaFile ? { ca: readFileSync(this.deps.downloadCaFile, "utf8") } : {}),
      });
      log.info("update: downloaded", { version: m.version, bytes: got.bytes, ms: got.ms });
      this.step("unpacking");
      await this.layout.install(archive, m);
      rmSync(downloads, { recursive: true, force: true });
      this.step("switching");
      // The trial is on record before `current` moves: a power cut between the two is seen by the
      // boot guard, which ends the trial on the release that runs.
      writeUpdateState(this.layout.root, {
        phase: "trial",
        from: running.version,
        to: m.version,
        starts: 0,
        maxStarts: config.maxStarts,
        switchedAt: this.now().toISOString(),
      });
      this.layout.switchTo(m.version);
      this.step("restarting");
      log.info("update: switched, restarting into the new release", { from: running.version, to: m.version });
      this.deps.restart(`update to ${m.version}`);
    } catch (err) {
      rmSync(downloads, { recursive: true, force: true });
      this.fail(err, m.version);
      this.job = undefined;
      log.error("update failed", { version: m.version, error: describeError(err) });
    }
  }

  private fail(err: unknown, version: string | undefined): void {
    const code = err instanceof UpdateError ? err.code : "update_io";
    this.lastFailure = {
      ...(version ? { version } : {}),
      code,
      message: (err as Error).message,
      at: this.now().toISOString(),
    };
  }
}
