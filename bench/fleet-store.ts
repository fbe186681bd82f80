/**
 * The fleet store (provisioning/store.ts: one JSON file, a lock file, atomic durable writes) at fleet
 * size. For 1,000 devices (the baseline, same run) and 10,000: file size, read (parse + validate),
 * a filter over every record, one update (lock, read, change, write, fsync, release); then
 * concurrent admins: K processes each doing M updates of the same device at once, reporting the
 * time per update (wait for the lock included), the longest wait against the CLI's default lock wait
 * (5 s), and whether every update is in the file afterwards (lost updates must be 0).
 *
 * Run: node --import tsx bench/fleet-store.ts [--sizes 1000,10000] [--runs 7] [--admins 4] [--updates 25]
 * A script that prints figures, not a timed test: numbers depend on the machine and its load.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { addProvisioned, emptyStore, FleetStore, markEnrolled } from "../provisioning/store.js";
import { median } from "./lib/stats.js";

const SELF = fileURLToPath(import.meta.url);
const DEFAULT_LOCK_WAIT_MS = 5_000;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

/** A store of `n` enrolled devices shaped like the CLI's records (two bundles, a certificate, tags). */
function writeStore(file: string, n: number): void {
  const data = emptyStore();
  const now = new Date("2026-11-01T00:00:00Z");
  for (let i = 0; i < n; i++) {
    const id = `dev-${String(i).padStart(5, "0")}`;
    addProvisioned(
      data,
      {
        id,
        jid: `${id}@iot.example.org`,
        credentialPath: "admin-password-sealed",
        bundleId: `b-${i}-0000-0000-0000-000000000000`,
        certSerial: (0x1000000000 + i).toString(16),
      },
      now,
    );
    const d = markEnrolled(data, id, now);
    d.bundleIds.push(`b-${i}-1111-1111-1111-111111111111`);
    (d as unknown as { tags: Record<string, string> }).tags = { site: `site-${i % 40}`, hw: i % 3 ? "pi4" : "pi5" };
  }
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600 });
}

async function timeIt(runs: number, fn: () => unknown | Promise<unknown>): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    xs.push(performance.now() - t0);
  }
  return median(xs);
}

/** Worker mode: M updates of one device, each appending a unique bundle id; prints its timings as JSON. */
async function worker(file: string, tag: string, updates: number): Promise<void> {
  const store = new FleetStore(file, 600_000);
  const ms: number[] = [];
  for (let i = 0; i < updates; i++) {
    const t0 = performance.now();
    await store.update((data) => {
      data.devices["dev-00000"]!.bundleIds.push(`${tag}-${i}`);
    });
    ms.push(performance.now() - t0);
  }
  process.stdout.write(JSON.stringify(ms));
}

function runWorker(file: string, tag: string, updates: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", SELF, "--worker", file, tag, String(updates)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (b: Buffer) => {
      out += b.toString();
    });
    child.once("error", reject);
    child.once("exit", (code) =>
      code === 0 ? resolve(JSON.parse(out) as number[]) : reject(new Error(`worker ${tag} exited ${code}`)),
    );
  });
}

interface SizeFigures {
  n: number;
  mib: number;
  readMs: number;
  filterMs: number;
  updateMs: number;
  concurrent: { perUpdateP50: number; perUpdateMax: number; overDefaultWait: number; wallMs: number; lost: number };
}

async function measure(dir: string, n: number, runs: number, admins: number, updates: number): Promise<SizeFigures> {
  const file = join(dir, `fleet-${n}.json`);
  writeStore(file, n);
  const store = new FleetStore(file);
  const readMs = await timeIt(runs, () => store.read());
  const filterMs = await timeIt(runs, () =>
    Object.values(store.read().devices).filter(
      (d) => (d as unknown as { tags: Record<string, string> }).tags.site === "site-7" && d.state === "enrolled",
    ),
  );
  const updateMs = await timeIt(runs, () =>
    store.update((data) => {
      data.devices["dev-00001"]!.lastSeen = new Date().toISOString();
    }),
  );
  const before = store.read().devices["dev-00000"]!.bundleIds.length;
  const t0 = performance.now();
  const all = (
    await Promise.all(Array.from({ length: admins }, (_, k) => runWorker(file, `admin${k}`, updates)))
  ).flat();
  const wallMs = performance.now() - t0;
  const after = store.read().devices["dev-00000"]!.bundleIds.length;
  all.sort((a, b) => a - b);
  return {
    n,
    mib: statSync(file).size / 1_048_576,
    readMs,
    filterMs,
    updateMs,
    concurrent: {
      perUpdateP50: median(all),
      perUpdateMax: all.at(-1) ?? 0,
      overDefaultWait: all.filter((x) => x > DEFAULT_LOCK_WAIT_MS).length,
      wallMs,
      lost: admins * updates - (after - before),
    },
  };
}

async function main(): Promise<void> {
  const sizes = arg("sizes", "1000,10000").split(",").map(Number);
  const runs = Number(arg("runs", "7"));
  const admins = Number(arg("admins", "4"));
  const updates = Number(arg("updates", "25"));
  const dir = mkdtempSync(join(tmpdir(), "fleet-store-bench-"));
  try {
    const rows: SizeFigures[] = [];
    for (const n of sizes) rows.push(await measure(dir, n, runs, admins, updates));
    const base = rows[0]!;
    console.log(
      `fleet store (JSON file + lock + atomic fsynced write), medians of ${runs} runs; ${admins} admin processes x ${updates} updates of one device at once`,
    );
    console.log(
      "devices   file      read     filter   update   concurrent: per update p50 / max   over 5 s   wall     lost",
    );
    for (const r of rows)
      console.log(
        `${String(r.n).padStart(7)}  ${r.mib.toFixed(2).padStart(5)} MiB  ${r.readMs.toFixed(1).padStart(6)} ms  ${r.filterMs.toFixed(1).padStart(6)} ms  ${r.updateMs.toFixed(1).padStart(6)} ms  ${r.concurrent.perUpdateP50.toFixed(0).padStart(10)} / ${r.concurrent.perUpdateMax.toFixed(0).padStart(5)} ms  ${String(r.concurrent.overDefaultWait).padStart(8)}  ${(r.concurrent.wallMs / 1000).toFixed(1).padStart(5)} s  ${String(r.concurrent.lost).padStart(5)}`,
      );
    for (const r of rows.slice(1))
      console.log(
        `${r.n} vs ${base.n} devices: read x${(r.readMs / base.readMs).toFixed(1)}, filter x${(r.filterMs / base.filterMs).toFixed(1)}, update x${(r.updateMs / base.updateMs).toFixed(1)} (records x${(r.n / base.n).toFixed(0)})`,
      );
    if (rows.some((r) => r.concurrent.lost > 0)) process.exitCode = 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === "--worker") await worker(process.argv[3]!, process.argv[4]!, Number(process.argv[5]));
else await main();
