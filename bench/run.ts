/**
 * `npm run bench`: runs every benchmark script in bench/ (bench/*.ts except this file; helpers live
 * in sub-folders), one after another, each in its own process with its output passed through.
 * session.ts goes first, the rest alphabetically. Exit code: non-zero if any benchmark failed.
 *
 * Ctrl-C reaches the running benchmark too (same process group); it tears its peers down itself,
 * so this runner waits for it to exit instead of dying first.
 */
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const BENCH_DIR = fileURLToPath(new URL(".", import.meta.url));
const FIRST = ["session.ts"];

function benchScripts(): string[] {
  const all = readdirSync(BENCH_DIR)
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts") && !f.endsWith(".test.ts") && f !== "run.ts")
    .sort();
  return [...FIRST.filter((f) => all.includes(f)), ...all.filter((f) => !FIRST.includes(f))];
}

function runOne(file: string, args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(BENCH_DIR, file), ...args], { stdio: "inherit" });
    child.once("error", (err) => {
      console.error(`[bench] could not start ${file}: ${err.message}`);
      resolve(1);
    });
    child.once("exit", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

async function main(): Promise<void> {
  let interrupted = false;
  process.on("SIGINT", () => {
    interrupted = true;
  });
  const scripts = benchScripts();
  const failed: string[] = [];
  for (const file of scripts) {
    if (interrupted) break;
    console.log(`\n=== bench/${file} ===`);
    const t0 = performance.now();
    const code = await runOne(file, []);
    console.log(
      `=== bench/${file}: ${code === 0 ? "ok" : `failed (exit ${code})`} in ${((performance.now() - t0) / 1000).toFixed(1)} s ===`,
    );
    if (code !== 0) failed.push(file);
  }
  if (interrupted) {
    console.error("[bench] interrupted");
    process.exitCode = 130;
  } else if (failed.length > 0) {
    console.error(`[bench] failed: ${failed.join(", ")}`);
    process.exitCode = 1;
  }
}

await main();
