#!/usr/bin/env node
// Launcher for the firmware simulator. A built package has dist/iot-sim.js (bundled by
// scripts/build.mjs); in a source checkout we load the TypeScript through tsx.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const built = join(root, "dist", "iot-sim.js");
if (existsSync(built)) {
  const { run } = await import(pathToFileURL(built).href);
  await run();
} else {
  const { register } = await import("tsx/esm/api");
  register();
  const { run } = await import(pathToFileURL(join(root, "firmware-sim", "cli.ts")).href);
  await run();
}
