#!/usr/bin/env node
// Builds the shipped JavaScript into dist/: one minified ESM entry per CLI (iot-agent, iot-fleet,
// iot-sim) and the chunks they share. Code splitting keeps rarely used code off the agent's start
// path: node-forge (~290 KiB, only `iot-agent enroll` needs it) is loaded on demand.
// Native addons (onoff's epoll, serialport's bindings) cannot be bundled: they stay external and
// are installed beside dist/ with `npm ci --omit=dev` (docs/deployment.md). Prints the sizes.
// `--outdir DIR` builds elsewhere (tests build a throwaway copy without touching dist/).
import { rmSync, statSync } from "node:fs";
import { parseArgs } from "node:util";
import { build } from "esbuild";

const { values } = parseArgs({ options: { outdir: { type: "string", default: "dist" } } });
const outdir = values.outdir;

const external = ["onoff", "epoll", "serialport", "@serialport/*", "bufferutil", "utf-8-validate"];
rmSync(outdir, { recursive: true, force: true });
const result = await build({
  entryPoints: {
    "iot-agent": "agent/cli.ts",
    "iot-fleet": "provisioning/cli.ts",
    "iot-sim": "firmware-sim/cli.ts",
  },
  outdir,
  outExtension: { ".js": ".mjs" },
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  splitting: true,
  platform: "node",
  format: "esm",
  target: "node20",
  minify: true,
  sourcemap: "linked",
  legalComments: "linked",
  external,
  metafile: true,
  // CommonJS dependencies inside an ESM bundle still call require().
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  logLevel: "warning",
});

const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
for (const [file, out] of Object.entries(result.metafile.outputs)) {
  if (!file.endsWith(".mjs") || file.includes("/chunks/")) continue;
  const statically = out.imports.filter((i) => i.kind === "import-statement" && !i.external).map((i) => i.path);
  const startup = [file, ...statically].reduce((sum, f) => sum + statSync(f).size, 0);
  if (out.entryPoint) console.log(`${file.padEnd(28)} ${kib(statSync(file).size).padStart(10)}  loaded at start: ${kib(startup)}`);
}
