/**
 * Private temporary directories for test peers. Each dir is registered for removal at exit, so a
 * crashed suite does not leave certificates, Prosody data or PTY links behind in /tmp.
 * Set IOT_HARNESS_KEEP_TMP=1 to keep them for post-mortem debugging (logs live there).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { registerTeardown, removeDirSync } from "./cleanup.js";

export interface TempDir {
  readonly path: string;
  /** Removes the directory now (idempotent). */
  remove(): void;
}

export function makeTempDir(prefix = "iot-harness-"): TempDir {
  const path = mkdtempSync(join(tmpdir(), prefix));
  const keep = process.env.IOT_HARNESS_KEEP_TMP === "1";
  let removed = false;
  const remove = (): void => {
    if (removed || keep) return;
    removed = true;
    removeDirSync(path);
  };
  const unregister = registerTeardown({ name: `tmp ${path}`, stop: remove, stopSync: remove });
  return {
    path,
    remove() {
      unregister();
      remove();
    },
  };
}
