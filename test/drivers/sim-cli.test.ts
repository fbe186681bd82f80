/**
 * The iot-sim CLI as a developer runs it: a child process that prints the PTY path, serves the
 * framed protocol on it, plays a scenario (here an unplug/replug), and cleans up on SIGTERM.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { McuClient } from "../../drivers/serial/client.js";
import { FramedSerialLink } from "../../drivers/serial/link.js";
import { SerialportBackend } from "../../drivers/serial/serialport-backend.js";
import { main } from "../../firmware-sim/cli.js";
import { withTimeout } from "../harness/cleanup.js";
import { type PeerProcess, spawnPeer } from "../harness/process.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const bin = join(root, "bin", "iot-sim.js");
const dir = mkdtempSync(join(tmpdir(), "iot-sim-cli-"));
// A harness peer: its process group (iot-sim and its socat) is killed even when this test process
// is killed by the runner's timeout, which skips after().
let sim: PeerProcess | undefined;
after(async () => {
  await sim?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function runInProcess(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(args, { out: (l) => (out += `${l}\n`), err: (l) => (err += `${l}\n`) });
  return { code, out, err };
}

describe("iot-sim CLI", () => {
  it("(in process) validates every example scenario with `check`, and names the key and line of a bad one", async () => {
    const examples = join(root, "examples", "scenarios");
    for (const f of readdirSync(examples).filter((f) => f.endsWith(".yaml"))) {
      const r = await runInProcess(["check", join(examples, f)]);
      assert.equal(r.code, 0, `${f}: ${r.err}`);
    }
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "steps:\n  - { at: 10, action: set, sensor: temperature }\n");
    const r = await runInProcess(["check", bad]);
    assert.equal(r.code, 1);
    assert.match(r.err, /bad\.yaml:2: steps\[0\]\.value: is required for action set/);
    assert.equal((await runInProcess(["--help"])).code, 0);
    assert.equal((await runInProcess(["frobnicate"])).code, 2);
  });

  it("runs a board on a PTY, plays an unplug/replug, and cleans up on SIGTERM", async () => {
    const scenario = join(dir, "s.yaml");
    // The timeline starts at the board's first request, so a machine slow to start this test's side
    // cannot miss the unplug (it hung here once: the link opened after the replug, and no event came).
    writeFileSync(
      scenario,
      "firmware: cli-fw 0.1\nstartOn: first-request\nsteps:\n  - { at: 500, action: unplug }\n  - { at: 800, action: replug }\n",
    );
    const linkDir = join(dir, "links");
    const peer = spawnPeer(
      process.execPath,
      [bin, "run", "--scenario", scenario, "--link", linkDir, "--log-level", "warn"],
      { name: "iot-sim" },
    );
    sim = peer;
    const agentPath = await withTimeout(
      new Promise<string>((resolve, reject) => {
        let out = "";
        peer.child.stdout!.on("data", (d) => {
          out += d;
          const m = /agent-pty: (\S+)/.exec(out);
          if (m) resolve(m[1]!);
        });
        void peer.exited.then((e) => reject(new Error(`iot-sim exited ${e.code}: ${peer.outputTail()}`)));
      }),
      30_000,
      "the agent-pty line",
    );
    assert.equal(agentPath, join(linkDir, "agent"));

    const link = new FramedSerialLink({
      id: "cli",
      path: agentPath,
      backend: new SerialportBackend(),
      reopen: { initialDelayMs: 20, maxDelayMs: 100, factor: 2 },
    });
    const client = new McuClient({ link, requestTimeoutMs: 1000 });
    client.start();
    const events: string[] = [];
    const replugged = new Promise<void>((resolve) => link.on("replug", () => resolve()));
    link.on("unplug", () => events.push("unplug"));
    link.on("replug", () => events.push("replug"));
    // A few tries: a request unanswered within requestTimeoutMs (a busy machine, or the simulator
    // still reopening its end after the replug) is asked again.
    const version = async () => {
      for (let attempt = 0; attempt < 5; attempt++) {
        const v = await client.version().catch(() => undefined);
        if (v !== undefined) return v;
      }
      return undefined;
    };
    await withTimeout(link.open(), 10_000, "opening the link");
    try {
      // The first request starts the scenario's clock.
      assert.equal(await version(), "cli-fw 0.1");
      await withTimeout(replugged, 30_000, "the unplug and replug").catch((err: Error) => {
        throw new Error(`${err.message} (link events: ${events.join(", ") || "none"})`);
      });
      assert.deepEqual(events, ["unplug", "replug"]);
      assert.equal(await version(), "cli-fw 0.1", "answers again after the replug");
    } finally {
      client.stop();
      await link.close();
    }

    // SIGTERM to iot-sim alone, not its group: it must stop its socat itself.
    peer.child.kill("SIGTERM");
    const exit = await withTimeout(peer.exited, 10_000, "iot-sim exiting on SIGTERM");
    assert.equal(exit.code, 0, peer.outputTail());
    await peer.stop();
    sim = undefined;
    assert.equal(existsSync(agentPath), false, "PTY links removed");
  });
});
