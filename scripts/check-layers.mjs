#!/usr/bin/env node
// The dependency rule of the tree (docs/architecture.md), checked on every `npm test`:
//
//   kernel  <-  xmpp  <-  provisioning  <-  agent
//   kernel  <-  drivers  <-  firmware-sim  <-  agent
//   everything above  <-  fleet-sim (N whole agents in one process)
//
// A folder may import from the folders it points to (transitively), never the other way. The one
// named exception is the plug-in edge: provisioning/device/ (the device side of enrolment) plugs a
// command and a config check into the agent, so it may import the agent's command registry and
// config loader, and nothing else of agent/. Test files may also import the simulator (firmware-sim)
// to drive what they test. Exit 1 with every violation listed.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Which top-level folders each folder may import from (itself always allowed). */
const MAY_IMPORT = {
  kernel: [],
  xmpp: ["kernel"],
  drivers: ["kernel"],
  "firmware-sim": ["kernel", "drivers"],
  provisioning: ["kernel", "xmpp"],
  agent: ["kernel", "xmpp", "drivers", "firmware-sim", "provisioning"],
  // Many whole agents in one process: the load generator above everything it simulates.
  "fleet-sim": ["kernel", "xmpp", "drivers", "firmware-sim", "provisioning", "agent"],
};

/** The plug-in edge: [importer prefix, imported file, why]. */
const PLUG_IN = [
  [
    "provisioning/device/",
    "agent/commands/registry.ts",
    "the rotate-credentials command plugs into the agent's registry",
  ],
  ["provisioning/device/", "agent/config/load.ts", "connect-check reads the agent's own config file"],
  ["provisioning/device/", "agent/config/schema.ts", "credentials follow the agent's config shape"],
];

function* sources(dir) {
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name.startsWith(".")) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* sources(path);
    else if (/\.(ts|mts|js|mjs)$/.test(name) && !name.endsWith(".d.ts")) yield path;
  }
}

const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["']([^"']+)["']/g;

const violations = [];
let files = 0;
for (const top of Object.keys(MAY_IMPORT)) {
  const dir = join(root, top);
  try {
    statSync(dir);
  } catch {
    violations.push(`${top}/: the folder the rule names does not exist`);
    continue;
  }
  for (const file of sources(dir)) {
    files++;
    const rel = relative(root, file).split(sep).join("/");
    const isTest = /\.test\.[mc]?[jt]s$/.test(rel) || rel.includes("/testing/") || rel.endsWith("/testing.ts");
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[1];
      if (!spec.startsWith(".")) continue;
      const target = relative(root, resolve(dirname(file), spec))
        .split(sep)
        .join("/");
      const targetTop = target.split("/")[0];
      if (targetTop === top) continue;
      if (MAY_IMPORT[top].includes(targetTop)) continue;
      if (isTest && targetTop === "firmware-sim") continue;
      const targetTs = target.replace(/\.js$/, ".ts");
      if (PLUG_IN.some(([from, to]) => rel.startsWith(from) && targetTs === to)) continue;
      violations.push(
        `${rel} imports ${target} (${top}/ may import ${MAY_IMPORT[top].join(", ") || "nothing of this tree"})`,
      );
    }
  }
}

if (violations.length > 0) {
  console.error(
    `dependency rule broken (docs/architecture.md, scripts/check-layers.mjs):\n  ${violations.join("\n  ")}`,
  );
  process.exit(1);
}
console.log(`layers: ${files} files follow kernel <- xmpp/drivers <- provisioning/firmware-sim <- agent <- fleet-sim`);
