/**
 * The device path from nothing, cheaply: what a Pi without build tools, a laptop or a CI machine
 * does (`npm ci --omit=dev`, then the bundle), on a PATH with no C++ compiler, make or python.
 * It catches the class of mistake that once made both README commands fail on a fresh Debian
 * machine (a required native addon with no prebuilt binary) in seconds, on every `npm test`;
 * scripts/fresh-machine-check proves the whole set-up on a real minimal Debian root
 * (docs/testing.md says why both exist).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { makeTempDir, type TempDir } from "../harness/tmp.js";

const REPO = join(import.meta.dirname, "..", "..");

interface LockEntry {
  version?: string;
  dev?: boolean;
  optional?: boolean;
  devOptional?: boolean;
  hasInstallScript?: boolean;
}
const lock = JSON.parse(readFileSync(join(REPO, "package-lock.json"), "utf8")) as {
  packages: Record<string, LockEntry>;
};

/** Production packages whose install runs a script: the ones that may need a compiler. */
const nativeProduction = Object.entries(lock.packages)
  .filter(([path, e]) => path !== "" && e.hasInstallScript && !e.dev)
  .map(([path, e]) => ({ path, name: path.replace(/^.*node_modules\//, ""), optional: e.optional === true }));

/** The CPU/OS pairs a device runs on (Raspberry Pi OS 32 and 64 bit) and the x86-64 laptop/CI. */
const DEVICE_PLATFORMS = ["linux-x64", "linux-arm64", "linux-arm"];

// What makes a machine able to build a native addon; a PATH without them is a Pi without build tools.
const BUILD_TOOL = /^(make|gmake|cc|c\+\+|cpp|gcc|g\+\+|clang|clang\+\+|ld|as|python|python3)([-.\d].*)?$|-linux-gnu/;

/** A bin directory mirroring the system's, minus every build tool. */
function pathWithoutBuildTools(into: string): string {
  mkdirSync(into);
  const dirs = [dirname(process.execPath), "/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"];
  for (const dir of dirs) {
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      if (BUILD_TOOL.test(name) || existsSync(join(into, name))) continue;
      symlinkSync(join(dir, name), join(into, name));
    }
  }
  return into;
}

/** The environment of a shell on that machine: no compiler hints, no outer npm lifecycle. */
function cleanEnv(path: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(npm_|CC$|CXX$|PYTHON$|NODE_OPTIONS$|NODE_GYP)/i.test(k)) continue;
    env[k] = v;
  }
  env.PATH = path;
  return env;
}

describe("native addons in the lockfile", () => {
  it("every production dependency with an install script is optional or ships prebuilt binaries for the device platforms", () => {
    assert.ok(nativeProduction.length > 0, "expected serialport's bindings at least");
    const problems: string[] = [];
    for (const { path, name, optional } of nativeProduction) {
      if (optional) continue;
      const prebuilds = join(REPO, path, "prebuilds");
      const have = existsSync(prebuilds) ? readdirSync(prebuilds) : [];
      const missing = DEVICE_PLATFORMS.filter((p) => !have.some((h) => h.split("+")[0] === p || h === p));
      if (missing.length > 0)
        problems.push(
          `${name} runs an install script and ships no prebuilt binary for ${missing.join(", ")}: make it optional (and load it lazily) or have scripts/setup install its build tools`,
        );
    }
    assert.deepEqual(problems, []);
  });
});

describe("device install on a machine without build tools", { timeout: 170_000 }, () => {
  let dir: TempDir;
  let app: string;
  let env: NodeJS.ProcessEnv;
  let install: { status: number | null; output: string };

  before(() => {
    dir = makeTempDir("iot-install-");
    app = join(dir.path, "app");
    env = cleanEnv(pathWithoutBuildTools(join(dir.path, "bin")));
    mkdirSync(app);
    // What docs/deployment.md copies to a device: the launchers, the bundle, the manifest and lock.
    for (const f of ["package.json", "package-lock.json"]) cpSync(join(REPO, f), join(app, f));
    cpSync(join(REPO, "bin"), join(app, "bin"), { recursive: true });
    const build = spawnSync(process.execPath, ["scripts/build.mjs", "--outdir", join(app, "dist")], {
      cwd: REPO,
      encoding: "utf8",
    });
    assert.equal(build.status, 0, `build failed: ${build.stderr}`);
    // --prefer-offline: the packages are in the npm cache after scripts/setup; the registry is
    // asked only for what is missing.
    const r = spawnSync("npm", ["ci", "--omit=dev", "--no-audit", "--no-fund", "--prefer-offline"], {
      cwd: app,
      env,
      encoding: "utf8",
      timeout: 150_000,
    });
    install = { status: r.status, output: `${r.stdout}\n${r.stderr}` };
  });
  after(() => dir?.remove());

  it("really has no compiler, make or python on its PATH", () => {
    for (const tool of ["make", "cc", "c++", "g++", "gcc", "python3"]) {
      const r = spawnSync("sh", ["-c", `command -v ${tool}`], { env, encoding: "utf8" });
      assert.notEqual(r.status, 0, `${tool} is reachable at ${r.stdout.trim()}`);
    }
  });

  it("npm ci --omit=dev succeeds; each native addon loads, or was optional and skipped", () => {
    assert.equal(install.status, 0, `npm ci --omit=dev failed without build tools:\n${install.output.slice(-3000)}`);
    for (const { path, name, optional } of nativeProduction) {
      const present = existsSync(join(app, path));
      if (optional && !present) continue;
      assert.ok(present, `${name} is missing after install`);
      const r = spawnSync(process.execPath, ["-e", `require(${JSON.stringify(name)})`], {
        cwd: app,
        env,
        encoding: "utf8",
      });
      assert.equal(r.status, 0, `${name} is installed but does not load: ${r.stderr}`);
    }
    // epoll has no prebuilt binary: without a compiler it and onoff must have been skipped.
    assert.equal(existsSync(join(app, "node_modules", "epoll")), false);
    assert.equal(existsSync(join(app, "node_modules", "onoff")), false);
    // serialport's bindings come prebuilt: the Linux binding really loads.
    const serial = spawnSync(
      process.execPath,
      [
        "-e",
        "const b = require('@serialport/bindings-cpp').autoDetect(); if (typeof b.open !== 'function') process.exit(1)",
      ],
      { cwd: app, env, encoding: "utf8" },
    );
    assert.equal(serial.status, 0, serial.stderr);
  });

  const config = (gpio: "onoff" | "sim") =>
    [
      "device:",
      "  id: install-check",
      "xmpp:",
      "  jid: install-check@iot.test",
      "  password: not-used",
      "  server: 127.0.0.1:5222",
      `hardware: { gpio: ${gpio}, serial: serialport }`,
      "board:",
      "  outputs:",
      "    relay: { source: gpio, line: 17 }",
      "",
    ].join("\n");

  it("the installed agent accepts a board without real GPIO", () => {
    const file = join(dir.path, "sim.yaml");
    writeFileSync(file, config("sim"));
    const r = spawnSync(process.execPath, [join(app, "bin", "iot-agent.js"), "check-config", file], {
      env,
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /valid/);
  });

  it("the installed agent refuses real GPIO with the fix, at check-config and at run (exit 3, no restart loop)", () => {
    const file = join(dir.path, "gpio.yaml");
    writeFileSync(file, config("onoff"));
    for (const args of [
      ["check-config", file],
      ["run", "--config", file],
    ]) {
      const r = spawnSync(process.execPath, [join(app, "bin", "iot-agent.js"), ...args], {
        env,
        encoding: "utf8",
        timeout: 20_000,
      });
      assert.equal(r.status, 3, `${args[0]}: exit ${r.status}\n${r.stdout}\n${r.stderr}`);
      assert.match(r.stderr, /onoff is not installed/);
      assert.match(r.stderr, /apt-get install make g\+\+ python3/);
      assert.match(r.stderr, /npm ci --omit=dev/);
    }
  });
});
