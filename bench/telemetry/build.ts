/**
 * Builds the telemetry bench children with esbuild into .tmp/bench/, so each client is measured as
 * plain node running one file (no tsx loader in RSS), with the same options as bench/session:
 * ESM, node20, minified, every dependency bundled (@xmpp/* inside the @xmpp/client child).
 */
import { mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

export interface TelemetryBundle {
  file: string;
  bytes: number;
}

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const BENCH_OUT = join(ROOT, ".tmp", "bench");

export async function buildTelemetryBundles(): Promise<{
  ours: TelemetryBundle;
  xmppjs: TelemetryBundle;
  raw: TelemetryBundle;
}> {
  mkdirSync(BENCH_OUT, { recursive: true });
  const one = async (name: string, entry: string): Promise<TelemetryBundle> => {
    const file = join(BENCH_OUT, name);
    await build({
      entryPoints: [join(ROOT, entry)],
      outfile: file,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      minify: true,
      // CommonJS dependencies inside an ESM bundle still call require() (as in scripts/build.mjs).
      banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
      logLevel: "warning",
    });
    return { file, bytes: statSync(file).size };
  };
  return {
    ours: await one("telemetry-ours.mjs", "bench/telemetry/ours.ts"),
    xmppjs: await one("telemetry-xmppjs.mjs", "bench/telemetry/xmppjs.ts"),
    raw: await one("telemetry-raw.mjs", "bench/telemetry/raw.ts"),
  };
}
