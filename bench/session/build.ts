/**
 * Builds the bench children with esbuild into .tmp/bench/, so every client is measured as plain
 * node running one file (tsx's loader would add its own megabytes to RSS).
 *  - ours.mjs:           bench/session/ours.ts with the agent code and ltx bundled in.
 *  - xmppjs.bundle.mjs:  bench/session/xmppjs.ts with @xmpp/* bundled in (like with like).
 *  - xmppjs.mjs:         the same driver, packages left external: @xmpp/client loads from node_modules
 *                        as an app that does not bundle would load it.
 * Same options for all: ESM, node20, minified.
 */
import { mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

export interface BenchBundle {
  name: string;
  file: string;
  bytes: number;
}

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const BENCH_OUT = join(ROOT, ".tmp", "bench");

export async function buildBenchBundles(): Promise<{
  ours: BenchBundle;
  xmppjsBundle: BenchBundle;
  xmppjs: BenchBundle;
}> {
  mkdirSync(BENCH_OUT, { recursive: true });
  const one = async (name: string, entry: string, external: "bundle" | "external"): Promise<BenchBundle> => {
    const file = join(BENCH_OUT, name);
    await build({
      entryPoints: [join(ROOT, entry)],
      outfile: file,
      bundle: true,
      packages: external === "external" ? "external" : undefined,
      platform: "node",
      format: "esm",
      target: "node20",
      minify: true,
      // CommonJS dependencies inside an ESM bundle still call require() (as in scripts/build.mjs).
      banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
      logLevel: "warning",
    });
    return { name, file, bytes: statSync(file).size };
  };
  return {
    ours: await one("ours.mjs", "bench/session/ours.ts", "bundle"),
    xmppjsBundle: await one("xmppjs.bundle.mjs", "bench/session/xmppjs.ts", "bundle"),
    xmppjs: await one("xmppjs.mjs", "bench/session/xmppjs.ts", "external"),
  };
}
