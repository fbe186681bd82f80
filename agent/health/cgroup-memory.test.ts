import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { isAgentError } from "../../kernel/errors.js";
import { cgroupMemoryLimit, parseLimit } from "./cgroup-memory.js";

const base = mkdtempSync(join(tmpdir(), "cgroup-"));
after(() => rmSync(base, { recursive: true, force: true }));

let n = 0;
/** A filesystem root holding `files` (path relative to the root -> content). */
function tree(files: Record<string, string>): string {
  const root = join(base, String(++n));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

const SERVICE = "system.slice/iot-agent.service";
const V1_NONE = "9223372036854771712\n";

describe("cgroupMemoryLimit", () => {
  it("cgroup v2: the service's own memory.max (MemoryMax=96M)", async () => {
    const root = tree({
      "proc/self/cgroup": `0::/${SERVICE}\n`,
      [`sys/fs/cgroup/${SERVICE}/memory.max`]: "100663296\n",
      "sys/fs/cgroup/system.slice/memory.max": "max\n",
    });
    assert.deepEqual(await cgroupMemoryLimit({ root }), {
      bytes: 100_663_296,
      file: join(root, "sys/fs/cgroup", SERVICE, "memory.max"),
    });
  });

  it("cgroup v2: a smaller limit on a parent slice wins over the service's own", async () => {
    const root = tree({
      "proc/self/cgroup": `0::/${SERVICE}\n`,
      [`sys/fs/cgroup/${SERVICE}/memory.max`]: "100663296\n",
      "sys/fs/cgroup/system.slice/memory.max": "67108864\n",
    });
    assert.deepEqual(await cgroupMemoryLimit({ root }), {
      bytes: 67_108_864,
      file: join(root, "sys/fs/cgroup/system.slice/memory.max"),
    });
  });

  it("cgroup v2: max everywhere is no limit", async () => {
    const root = tree({
      "proc/self/cgroup": `0::/${SERVICE}\n`,
      [`sys/fs/cgroup/${SERVICE}/memory.max`]: "max\n",
      "sys/fs/cgroup/system.slice/memory.max": "max\n",
    });
    assert.equal(await cgroupMemoryLimit({ root }), undefined);
  });

  it("cgroup v2 in a container: the host's path is not under the mount, its root is the container's cgroup", async () => {
    const root = tree({
      "proc/self/cgroup": "0::/../../docker/abc123\n",
      "sys/fs/cgroup/memory.max": "268435456\n",
    });
    assert.equal((await cgroupMemoryLimit({ root }))?.bytes, 268_435_456);
  });

  it("cgroup v1: the memory controller's memory.limit_in_bytes; near 2^63 is no limit", async () => {
    const limited = tree({
      "proc/self/cgroup": `12:pids:/${SERVICE}\n4:memory:/${SERVICE}\n1:name=systemd:/${SERVICE}\n0::/${SERVICE}\n`,
      [`sys/fs/cgroup/memory/${SERVICE}/memory.limit_in_bytes`]: "100663296\n",
      "sys/fs/cgroup/memory/system.slice/memory.limit_in_bytes": V1_NONE,
      "sys/fs/cgroup/memory/memory.limit_in_bytes": V1_NONE,
    });
    assert.deepEqual(await cgroupMemoryLimit({ root: limited }), {
      bytes: 100_663_296,
      file: join(limited, "sys/fs/cgroup/memory", SERVICE, "memory.limit_in_bytes"),
    });
    const unlimited = tree({
      "proc/self/cgroup": "7:cpu,memory:/user.slice\n",
      "sys/fs/cgroup/memory/user.slice/memory.limit_in_bytes": V1_NONE,
      "sys/fs/cgroup/memory/memory.limit_in_bytes": V1_NONE,
    });
    assert.equal(await cgroupMemoryLimit({ root: unlimited }), undefined);
  });

  it("missing files: no /proc/self/cgroup, or no limit files at all, is no limit", async () => {
    assert.equal(await cgroupMemoryLimit({ root: tree({}) }), undefined);
    assert.equal(await cgroupMemoryLimit({ root: tree({ "proc/self/cgroup": `0::/${SERVICE}\n` }) }), undefined);
  });

  it("a limit file that exists but cannot be read is an error naming it, not 'no limit'", async () => {
    // A directory where the file should be: unreadable even for root, who reads a chmod 0 file.
    const root = tree({ "proc/self/cgroup": `0::/${SERVICE}\n` });
    const file = join(root, "sys/fs/cgroup", SERVICE, "memory.max");
    mkdirSync(file, { recursive: true });
    await assert.rejects(
      cgroupMemoryLimit({ root }),
      (e: unknown) => isAgentError(e, "memory_limit_unreadable") && e.context.file === file,
    );
  });
});

describe("parseLimit", () => {
  it("reads bytes; max, v1's no-limit value, 0 and garbage are none", () => {
    assert.equal(parseLimit("100663296\n"), 100_663_296);
    for (const text of ["max\n", V1_NONE, "0\n", "", "96M", undefined]) assert.equal(parseLimit(text), undefined);
  });
});
