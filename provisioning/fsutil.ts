/**
 * File helpers for secrets and state: private directories (0700), atomic replacement
 * (tmp + fsync + rename + fsync of the directory, so a power cut leaves either the old or the new
 * file, never a torn one), and an exclusive lock file against two CLI runs racing on one store.
 */
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync } from "node:fs";
import { writeFileAtomic as writeDurable } from "../kernel/fsutil.js";
import { ProvisioningError } from "./errors.js";

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** Creates `dir` (and parents) and makes sure the leaf is 0700, tightening it if it already existed. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  // mkdir's mode is masked by the umask and ignored for existing directories.
  if ((statSync(dir).mode & 0o777) !== PRIVATE_DIR_MODE) chmodSync(dir, PRIVATE_DIR_MODE);
}

/** Replaces `file` atomically with `data`, created with `mode` (default 0600) from the first byte. */
export function writeFileAtomic(file: string, data: string | Uint8Array, mode = PRIVATE_FILE_MODE): void {
  try {
    writeDurable(file, data, mode);
  } catch (err) {
    throw new ProvisioningError(
      "store_io",
      `cannot write ${file}: ${(err as Error).message}`,
      { file },
      { cause: err },
    );
  }
}

export function fileMode(file: string): number {
  return statSync(file).mode & 0o777;
}

export interface FileLock {
  release(): void;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Takes `file` as an exclusive lock (O_EXCL create holding our pid). A lock left by a dead process
 * on this host is taken over; a live holder is waited for up to `waitMs` (polling, without blocking
 * the event loop), then `store_locked`.
 */
export async function acquireLock(file: string, waitMs = 5_000): Promise<FileLock> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      const fd = openSync(file, "wx", PRIVATE_FILE_MODE);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      let released = false;
      return {
        release() {
          if (released) return;
          released = true;
          rmSync(file, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST")
        throw new ProvisioningError(
          "store_io",
          `cannot create lock ${file}: ${(err as Error).message}`,
          { file },
          {
            cause: err,
          },
        );
    }
    let holder = Number.NaN;
    try {
      holder = Number.parseInt(readFileSync(file, "utf8"), 10);
    } catch {
      continue; // released between our open and read: try again at once
    }
    if (Number.isInteger(holder) && holder > 0 && !pidAlive(holder)) {
      rmSync(file, { force: true });
      continue;
    }
    if (Date.now() >= deadline)
      throw new ProvisioningError(
        "store_locked",
        `fleet store is locked by process ${Number.isNaN(holder) ? "?" : holder} (${file}); another iot-fleet command is running`,
        { file, holder },
      );
    await sleep(50);
  }
}
