/**
 * The memory limit the kernel enforces on this process: systemd's MemoryMax= (deploy/iot-agent.service)
 * or a container's limit, read from the cgroup files. Past it the kernel's OOM killer ends the
 * agent, so the memory watch (memory-watch.ts) warns before RSS gets there.
 *
 *   cgroup v2: /proc/self/cgroup has `0::/system.slice/iot-agent.service`;
 *              the limit is /sys/fs/cgroup/system.slice/iot-agent.service/memory.max ("max": none).
 *   cgroup v1: a line whose controllers include `memory`, e.g. `4:memory:/system.slice/x.service`;
 *              the limit is /sys/fs/cgroup/memory/system.slice/x.service/memory.limit_in_bytes
 *              (no limit reads as 2^63 rounded down to a page, 9223372036854771712).
 *
 * Every ancestor cgroup is read too and the smallest limit wins: a limit on a parent slice binds
 * the service as much as its own, and in a container the path /proc/self/cgroup names (the host's
 * view) does not exist under the container's mount, whose root is then the container's own cgroup.
 * Hybrid systems list both kinds of line; both are read and the smallest limit wins there as well.
 */
import { readFile } from "node:fs/promises";
import { posix } from "node:path";
import { AgentError } from "../../kernel/errors.js";

export interface MemoryLimit {
  bytes: number;
  /** The file the limit was read from, for the log line that says where it came from. */
  file: string;
}

export interface CgroupMemoryOptions {
  /** Filesystem root the /proc and /sys paths are under: "/" on a device, a temp dir in tests. */
  root?: string;
}

/** cgroup v1 writes "no limit" as PAGE_COUNTER_MAX pages; anything this large is no limit. */
const V1_UNLIMITED = 2 ** 62;

/**
 * The smallest memory limit over this process's cgroups; undefined when none is set or there are no
 * cgroup files (not Linux, no /sys). A file that exists but cannot be read rejects with AgentError
 * `memory_limit_unreadable` naming it, rather than passing for "no limit".
 */
export async function cgroupMemoryLimit(opts: CgroupMemoryOptions = {}): Promise<MemoryLimit | undefined> {
  const root = opts.root ?? "/";
  const self = await readText(posix.join(root, "proc/self/cgroup"));
  if (self === undefined) return undefined;
  const files: string[] = [];
  for (const line of self.split("\n")) {
    // hierarchy-id:controllers:path (the path may itself contain ':').
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    const [id, controllers, path] = [m[1]!, m[2]!, m[3]!];
    if (id === "0" && controllers === "") files.push(...limitFiles(root, "sys/fs/cgroup", path, "memory.max"));
    else if (controllers.split(",").includes("memory"))
      files.push(...limitFiles(root, "sys/fs/cgroup/memory", path, "memory.limit_in_bytes"));
  }
  let best: MemoryLimit | undefined;
  for (const file of files) {
    const bytes = parseLimit(await readText(file));
    if (bytes !== undefined && (best === undefined || bytes < best.bytes)) best = { bytes, file };
  }
  return best;
}

/**
 * The limit file of the cgroup at `path` and of each of its ancestors, up to the mount's root.
 * normalize() drops a leading `/..` (a cgroup outside the namespace reads as `/../x`), so only
 * files under the mount are ever read.
 */
function limitFiles(root: string, mount: string, path: string, name: string): string[] {
  const out: string[] = [];
  for (let rel = posix.normalize(`/${path}`); ; rel = posix.dirname(rel)) {
    out.push(posix.join(root, mount, rel, name));
    if (rel === "/") return out;
  }
}

/** Bytes; undefined for "max", v1's near-2^63 "no limit", 0 (a limit nothing could run under) and anything not a number. */
export function parseLimit(text: string | undefined): number | undefined {
  const v = text?.trim();
  if (v === undefined || !/^\d+$/.test(v)) return undefined;
  const n = Number(v);
  return n > 0 && n < V1_UNLIMITED ? n : undefined;
}

/** The file's text; undefined when it is not there (no such cgroup, no limit file at the root, not Linux). */
async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw new AgentError("memory_limit_unreadable", `cannot read ${file}`, { file, code }, { cause: err });
  }
}
