/**
 * Linked pseudo-terminal pairs via socat: serial ports without hardware.
 *
 * `socat -d -d pty,raw,echo=0,link=DIR/a pty,raw,echo=0,link=DIR/b` creates two PTYs whose bytes
 * flow to each other unchanged (all 256 values). stop() kills socat, which removes both links: to
 * the device side this is a hot-unplug. restart() brings a pair back on the same link paths (replug).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { HarnessError } from "./errors.js";
import { type PeerProcess, spawnPeer } from "./process.js";
import { makeTempDir, type TempDir } from "./tmp.js";

export interface PtyPairOptions {
  /** Directory for the links; default a private temp dir (removed by stop({ removeDir: true })). */
  dir?: string;
  /** Link names inside dir. Default "a" and "b". */
  names?: [string, string];
  startTimeoutMs?: number;
}

export interface PtyPair {
  /** Path of one end (a symlink to /dev/pts/N). */
  readonly a: string;
  /** Path of the other end. */
  readonly b: string;
  readonly dir: string;
  /** True while socat runs (the links exist). */
  readonly running: boolean;
  /** Kills socat: both links disappear (hot-unplug). The dir stays, so restart() can replug. */
  unplug(): Promise<void>;
  /** Starts a fresh socat on the same link paths (replug); the new PTYs are different devices. */
  restart(): Promise<void>;
  /** Unplugs and removes the temp dir (if the harness made it). */
  stop(): Promise<void>;
}

export async function startPtyPair(opts: PtyPairOptions = {}): Promise<PtyPair> {
  let tmp: TempDir | null = null;
  let dir = opts.dir;
  if (dir === undefined) {
    tmp = makeTempDir("iot-pty-");
    dir = tmp.path;
  }
  const [nameA, nameB] = opts.names ?? ["a", "b"];
  const a = join(dir, nameA);
  const b = join(dir, nameB);
  const timeoutMs = opts.startTimeoutMs ?? 5000;
  let proc: PeerProcess | null = null;

  const launch = async (): Promise<void> => {
    if (existsSync(a) || existsSync(b)) {
      throw new HarnessError("harness.pty_busy", `PTY link path already exists: ${existsSync(a) ? a : b}`, { a, b });
    }
    const p = spawnPeer("socat", ["-d", "-d", `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], {
      name: "socat",
    });
    proc = p;
    const deadline = Date.now() + timeoutMs;
    // socat logs "starting data transfer loop" once both PTYs exist; the links are what callers use.
    while (!(existsSync(a) && existsSync(b) && /starting data transfer loop/.test(p.outputTail(20)))) {
      if (!p.running || Date.now() > deadline) {
        await p.stop(500);
        throw new HarnessError(
          "harness.socat_start_failed",
          `socat did not create ${a} and ${b}:\n${p.outputTail(20)}`,
          { a, b },
        );
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  const unplug = async (): Promise<void> => {
    const p = proc;
    proc = null;
    if (p === null) return;
    await p.stop(1000);
    // socat unlinks on SIGTERM; if it was SIGKILLed the links dangle, so remove them ourselves.
    const { rmSync } = await import("node:fs");
    rmSync(a, { force: true });
    rmSync(b, { force: true });
  };

  await launch();
  return {
    a,
    b,
    dir,
    get running() {
      return proc?.running ?? false;
    },
    unplug,
    async restart() {
      await unplug();
      await launch();
    },
    async stop() {
      await unplug();
      tmp?.remove();
    },
  };
}
