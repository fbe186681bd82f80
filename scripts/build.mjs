#!/usr/bin/env node
// Builds the shipped JavaScript into dist/: one minified CommonJS bundle per CLI (iot-agent.cjs,
// iot-fleet.cjs, iot-sim.cjs) and, beside them, the two large packages they load only on demand,
// each bundled once into dist/vendor/: MQTT.js (only a board with MQTT devices or the MQTT mirror
// loads it) and node-forge (only enrolment and the fleet tool). Prints the sizes.
//
// Of MQTT.js only MqttClient and Store are bundled (dist/vendor/mqtt.cjs), never its index module,
// whose connect() would load the WebSocket and SOCKS transports (drivers/mqtt/client-factory.ts).
//
// CommonJS, not ESM, for memory: the first ES module a Node 20 process loads brings in Node's ESM
// loader, and every module it loads keeps a module record. Measured with bench/memory.ts (XMPP
// only, same run, same flags): 2.8-3.1 MiB more RSS and 0.7 MiB more live heap for the ESM build
// (docs/benchmarks.md). esbuild splits code into chunks only for ESM, so our own on-demand parts
// (the simulator, the enrolment CLI) stay inside the CLI's file: esbuild initialises each of them
// at its first import(), and until then they cost only their source text.
//
// Native addons (onoff's epoll, serialport's bindings) cannot be bundled: they stay external and
// are installed beside dist/ with `npm ci --omit=dev` (docs/deployment.md).
// `--outdir DIR` builds elsewhere (tests build a throwaway copy without touching dist/).
import { rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { build } from "esbuild";

const { values } = parseArgs({ options: { outdir: { type: "string", default: "dist" } } });
const outdir = values.outdir;

const native = ["onoff", "epoll", "serialport", "@serialport/*"];
/** Packages bundled once into dist/vendor/NAME.cjs and required from there. */
const vendor = ["node-forge"];
/**
 * The MQTT.js modules our sources import, and their names in dist/vendor/mqtt.cjs: each import
 * becomes that module's exports (module.exports of MQTT.js's CommonJS module), from the one bundle.
 */
const mqttModules = { "mqtt/lib/client": "client", "mqtt/lib/store": "store" };
const common = {
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  minify: true,
  // Error classes name themselves after their constructor (kernel/errors.ts): without this the
  // logs of the shipped agent would say "a" or "w" where the code says DriverError.
  keepNames: true,
  sourcemap: "linked",
  legalComments: "linked",
  outExtension: { ".js": ".cjs" },
  metafile: true,
  logLevel: "warning",
};

/**
 * `import ... from "node-forge"` becomes require("./vendor/node-forge.cjs"), relative to the CLI's
 * bundle; `import ... from "mqtt/lib/client"` becomes require("./vendor/mqtt.cjs").client (a
 * one-line module in the namespace "vendor-mqtt"). Importing "mqtt" itself is a build error.
 */
const vendorPlugin = {
  name: "vendor",
  setup(b) {
    const filter = new RegExp(`^(${vendor.map((v) => v.replace(/[-/]/g, "\\$&")).join("|")})$`);
    b.onResolve({ filter }, (args) => ({ path: `./vendor/${args.path}.cjs`, external: true }));
    b.onResolve({ filter: /^mqtt(\/.*)?$/ }, (args) =>
      Object.hasOwn(mqttModules, args.path)
        ? { path: args.path, namespace: "vendor-mqtt" }
        : {
            errors: [
              {
                text: `import MqttClient and Store from ${Object.keys(mqttModules).join(" and ")}, not ${args.path} (drivers/mqtt/client-factory.ts)`,
              },
            ],
          },
    );
    b.onLoad({ filter: /.*/, namespace: "vendor-mqtt" }, (args) => ({
      contents: `module.exports = require("./vendor/mqtt.cjs").${mqttModules[args.path]};`,
      loader: "js",
    }));
    b.onResolve({ filter: /^\.\/vendor\//, namespace: "vendor-mqtt" }, (args) => ({ path: args.path, external: true }));
  },
};

rmSync(outdir, { recursive: true, force: true });
const clis = await build({
  ...common,
  entryPoints: {
    "iot-agent": "agent/cli.ts",
    "iot-fleet": "provisioning/cli.ts",
    "iot-sim": "firmware-sim/cli.ts",
    "iot-fleet-sim": "fleet-sim/cli.ts",
    // Run by bin/launch.js before the agent when IOT_AGENT_RELEASES_DIR is set: always from the base
    // install, never from a release (docs/update.md). It must never load node-forge.
    "iot-boot-guard": "agent/update/boot-guard.ts",
  },
  outdir,
  external: native,
  plugins: [vendorPlugin],
  // Our sources are ES modules; the few that locate themselves (createRequire) read import.meta.url.
  define: { "import.meta.url": "__importMetaUrl" },
  banner: { js: "const __importMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
});
const vendored = await build({
  ...common,
  entryPoints: Object.fromEntries(vendor.map((v) => [`vendor/${v}`, v])),
  outdir,
});
const mqttVendored = await build({
  ...common,
  stdin: {
    contents: Object.entries(mqttModules)
      .map(([module, name]) => `exports.${name} = require(${JSON.stringify(module)});`)
      .join("\n"),
    sourcefile: "vendor-mqtt.js",
    resolveDir: process.cwd(),
    loader: "js",
  },
  outfile: join(outdir, "vendor/mqtt.cjs"),
});

const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
for (const result of [clis, vendored, mqttVendored])
  for (const [file, out] of Object.entries(result.metafile.outputs))
    if (out.entryPoint) console.log(`${file.padEnd(30)} ${kib(statSync(file).size).padStart(10)}`);
