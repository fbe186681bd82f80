#!/usr/bin/env node
// Launcher: the built bundle when present (dist/), else the TypeScript sources through tsx (a checkout).
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bundle = join(root, "dist", "iot-fleet.mjs");
let cli;
if (existsSync(bundle)) {
  cli = await import(pathToFileURL(bundle).href);
} else {
  await import("tsx/esm");
  cli = await import(pathToFileURL(join(root, "provisioning", "cli.ts")).href);
}
process.exitCode = await cli.main(process.argv.slice(2), {
  out: (s) => process.stdout.write(`${s}\n`),
  err: (s) => process.stderr.write(`${s}\n`),
  env: process.env,
});
