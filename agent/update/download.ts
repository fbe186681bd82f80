/**
 * Downloads a release archive to `dest`, never more than the manifest's size, checking its SHA-256
 * on the way: the bytes go to `dest.partial`, which becomes `dest` (rename, then a directory fsync)
 * only when the size and the hash match. A power cut leaves at most a partial file, which the next
 * download replaces. It uses node:https, not fetch(): fetch's HTTP parser is WebAssembly, which the
 * agent's `--jitless` service flags turn off. No redirects are followed: an XEP-0363 GET URL
 * serves the file itself.
 */
import { createHash } from "node:crypto";
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { dirname } from "node:path";
import { fsyncDirSync } from "../../kernel/fsutil.js";
import { UpdateError } from "./errors.js";

export interface DownloadOptions {
  url: string;
  dest: string;
  size: number;
  sha256: string;
  /** CA certificates (PEM) to trust for an https URL in addition to the system's. */
  ca?: string;
  /** The whole download. */
  timeoutMs: number;
}

export async function downloadRelease(o: DownloadOptions): Promise<{ bytes: number; ms: number }> {
  let url: URL;
  try {
    url = new URL(o.url);
  } catch {
    throw new UpdateError("update_download_failed", `not a URL: ${o.url}`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:")
    throw new UpdateError("update_download_failed", `unsupported URL scheme ${url.protocol}`, { url: o.url });
  const partial = `${o.dest}.partial`;
  const t0 = Date.now();
  const fd = openSync(partial, "w", 0o600);
  let closed = false;
  const close = () => {
    if (!closed) closeSync(fd);
    closed = true;
  };
  try {
    const hash = createHash("sha256");
    const bytes = await new Promise<number>((resolve, reject) => {
      const fail = (msg: string, ctx: Record<string, unknown> = {}, cause?: unknown) =>
        reject(new UpdateError("update_download_failed", msg, { url: o.url, ...ctx }, { cause }));
      const get = url.protocol === "https:" ? https.get : http.get;
      const req = get(url, { ...(o.ca ? { ca: o.ca } : {}), timeout: o.timeoutMs }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          fail(`HTTP ${res.statusCode} ${res.statusMessage ?? ""}`.trim(), { status: res.statusCode });
          return;
        }
        const announced = Number(res.headers["content-length"]);
        if (Number.isFinite(announced) && announced !== o.size) {
          res.destroy();
          fail(`the server announces ${announced} bytes, the manifest ${o.size}`, { announced, size: o.size });
          return;
        }
        let n = 0;
        res.on("data", (chunk: Buffer) => {
          n += chunk.length;
          if (n > o.size) {
            res.destroy();
            fail(`more than the manifest's ${o.size} bytes`, { size: o.size });
            return;
          }
          hash.update(chunk);
          let off = 0;
          while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
        });
        res.on("end", () => resolve(n));
        res.on("error", (err) => fail(`download interrupted: ${err.message}`, {}, err));
      });
      req.on("timeout", () => req.destroy(new Error(`no answer within ${o.timeoutMs} ms`)));
      req.on("error", (err) => fail(`download failed: ${err.message}`, {}, err));
      const overall = setTimeout(() => req.destroy(new Error(`not complete within ${o.timeoutMs} ms`)), o.timeoutMs);
      req.on("close", () => clearTimeout(overall));
    });
    if (bytes !== o.size)
      throw new UpdateError("update_download_failed", `got ${bytes} bytes, the manifest says ${o.size}`, {
        bytes,
        size: o.size,
      });
    const digest = hash.digest("hex");
    if (digest !== o.sha256)
      throw new UpdateError("update_hash_mismatch", "the archive's SHA-256 is not the manifest's", {
        expected: o.sha256,
        got: digest,
      });
    fsyncSync(fd);
    close();
    renameSync(partial, o.dest);
    fsyncDirSync(dirname(o.dest));
    return { bytes, ms: Date.now() - t0 };
  } catch (err) {
    close();
    rmSync(partial, { force: true });
    throw err;
  }
}
