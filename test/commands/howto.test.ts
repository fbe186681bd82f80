/** The slixmpp script operators copy from docs/commands.md and `npm run demo` works against a real server. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { howToRunCommands, SLIXMPP_SCRIPT } from "../../agent/commands/howto.js";
import { type ProsodyHandle, startProsody } from "../harness/prosody.js";
import { makeTempDir, type TempDir } from "../harness/tmp.js";
import { type CommandDevice, RELAY_LINE, startCommandDevice } from "./device.js";

const run = promisify(execFile);
const PASS = "pw-howto-1";

describe("the documented slixmpp command script", () => {
  let prosody: ProsodyHandle;
  let dir: TempDir;
  let device: CommandDevice;
  let script: string;

  before(async () => {
    dir = makeTempDir("commands-howto-");
    prosody = await startProsody();
    await prosody.register("device", PASS);
    await prosody.register("alice", PASS);
    device = await startCommandDevice({
      prosody,
      account: "device",
      password: PASS,
      dir: dir.path,
      operators: [{ jid: "alice@iot.test", commands: ["*"] }],
    });
    script = join(dir.path, "run-command.py");
    writeFileSync(script, SLIXMPP_SCRIPT);
  });

  after(async () => {
    await device?.stop();
    await prosody?.stop();
    dir?.remove();
  });

  const py = (...args: string[]) =>
    run("/usr/bin/python3", [script, "alice@iot.test", PASS, device.jid, ...args], {
      timeout: 20_000,
      env: {
        ...process.env,
        XMPP_HOST: prosody.host,
        XMPP_PORT: String(prosody.port),
        ...(prosody.caFile ? { XMPP_CA: prosody.caFile } : {}),
      },
    });

  it("runs set-output in one request and prints what changed", async () => {
    const { stdout } = await py("set-output", "output=relay", "value=1");
    assert.match(stdout, /^completed$/m);
    assert.match(stdout, /info: Changed output relay: off -> on/);
    assert.equal(device.gpio.level(RELAY_LINE), 0);
  });

  it("prints result fields and field errors", async () => {
    const status = await py("status");
    assert.match(status.stdout, /^link = online since /m);
    assert.doesNotMatch(status.stdout, /^json = /m);
    const bad = await py("set-output", "output=relay", "value=perhaps");
    assert.match(bad.stdout, /error: bad-request Field 'value'/);
  });

  it("is part of the how-to text", () => {
    const text = howToRunCommands(device.jid, "alice@iot.test");
    assert.match(text, /Discover Services/);
    assert.match(text, /\/cmd exec/);
    assert.ok(text.includes('c.register_plugin("xep_0050")'));
  });
});
