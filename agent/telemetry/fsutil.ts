/**
 * Durable file primitives. A rename is atomic on POSIX file systems, but it is only durable once
 * the directory entry itself is flushed, hence the directory fsync after each rename/unlink
 * (ext4 with data=ordered usually gets away without it; f2fs and others on SD cards do not).
 */
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from "node:fs";
import { open } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** Flushes a directory entry table. Some platforms refuse to open directories: then nothing can be done. */
export function fsyncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EISDIR" && code !== "EPERM" && code !== "EINVAL") throw err;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(dir, "r");
    await fh.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EISDIR" && code !== "EPERM" && code !== "EINVAL") throw err;
  } finally {
    await fh?.close();
  }
}

/** Writes `data` to `path` so that after a power cut the file holds either the old or the new content. */
export function writeFileAtomicSync(path: string, data: string | Uint8Array): void {
  const tmp = join(dirname(path), `.${basename(path)}.tmp`);
  const fd = openSync(tmp, "w", 0o600);
  try {
    const buf = typeof data === "string" ? Buffer.from(data) : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDirSync(dirname(path));
}
