#!/usr/bin/env node
// Builds one minified ESM bundle per CLI into dist/. Native addons (onoff's epoll, serialport's
// bindings) cannot be bundled: they stay external and are installed beside the bundle with
// `npm ci --omit=dev` (see docs/deployment.md). Prints each bundle's size.
import { statSync } from "node:fs";
import { build } from "esbuild";

const entries = {
  "iot-agent": "agent/cli.ts",
  "iot-fleet": "provisioning/cli.ts",
  "iot-sim": "firmware-sim/cli.ts",
};
const external = ["onoff", "epoll", "serialport", "@serialport/*", "bufferutil", "utf-8-validate"];

for (const [name, entry] of Object.entries(entries)) {
  const outfile = `dist/${name}.mjs`;
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    minify: true,
    sourcemap: "linked",
    legalComments: "linked",
    external,
    // CommonJS dependencies inside an ESM bundle still call require().
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    logLevel: "warning",
  });
  console.log(`${outfile}  ${(statSync(outfile).size / 1024).toFixed(1)} KiB`);
}
