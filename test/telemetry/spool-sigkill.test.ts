/**
 * Power-cut stand-in: a writer process is SIGKILLed mid-append, repeatedly, on the same spool.
 * Every batch whose append() had resolved before the kill (fsync always) must be there after reopen,
 * in order, and the spool must keep working. (SIGKILL does not lose the page cache, so this proves
 * the recovery path - torn tails, half-created segments - not the fsync itself; the truncation tests
 * in agent/telemetry/file-spool.test.ts cover what a real power cut can leave behind.)
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { FileSpoolStore } from "../../agent/telemetry/file-spool.js";
import { seededRandom } from "../harness/seeded-random.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = mkdtempSync(join(tmpdir(), "spool-kill-"));
after(() => rmSync(root, { recursive: true, force: true }));

const KILLS = 6;
const random = seededRandom("spool SIGKILL points");

/** Runs the writer until it reported `target` appends, plus a random few ms, then SIGKILLs it. */
function runAndKill(dir: string, firstSeq: number, target: number): Promise<Array<[number, number]>> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", join(here, "fixtures", "spool-writer.ts"), dir, String(firstSeq)],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const acked: Array<[number, number]> = [];
    let buf = "";
    let stderr = "";
    let killing = false;
    const guard = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.stdout.on("data", (d: Buffer) => {
      buf += d.toString();
      let nl = buf.indexOf("\n");
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        nl = buf.indexOf("\n");
        const m = /^ok (\d+) (\d+)$/.exec(line);
        if (m) acked.push([Number(m[1]), Number(m[2])]);
        if (!killing && acked.length >= target) {
          killing = true;
          setTimeout(() => child.kill("SIGKILL"), random.below(15));
        }
      }
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(guard);
      if (signal !== "SIGKILL") reject(new Error(`writer exited ${code} ${signal}: ${stderr}`));
      else resolve(acked);
    });
  });
}

describe("FileSpoolStore under SIGKILL", () => {
  it(`keeps every resolved append across ${KILLS} kills mid-append`, async () => {
    const dir = join(root, "spool");
    const confirmed = new Map<number, number>(); // firstSeq -> lastSeq
    let next = 0;
    for (let k = 0; k < KILLS; k++) {
      const acked = await runAndKill(dir, next, 150 + k * 40);
      for (const [f, l] of acked) confirmed.set(f, l);
      const s = await FileSpoolStore.open({ dir, segmentBytes: 16 * 1024, maxBytes: 64 * 1024 * 1024 });
      const batches = await s.peek(1_000_000);
      const have = new Map(batches.map((b) => [b.firstSeq, b.lastSeq]));
      for (const [f, l] of confirmed)
        assert.equal(have.get(f), l, `kill ${k}: batch ${f}-${l} lost (TEST_SEED=${random.seed})`);
      for (let i = 1; i < batches.length; i++) assert.ok(batches[i]!.firstSeq > batches[i - 1]!.lastSeq, "in order");
      assert.ok(batches.every((b) => b.historical));
      next = s.lastSeq + 1;
      await s.close();
    }
    assert.ok(confirmed.size > KILLS * 150);
  });
});
