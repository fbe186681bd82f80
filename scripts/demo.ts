/**
 * The demo: a private Prosody on 127.0.0.1:5322 (domain iot.test), the simulated microcontroller
 * on a PTY (`iot-sim run`), the agent (`iot-agent run --config examples/sim.yaml`, exactly as a
 * user runs it), and a slixmpp "demo operator" that subscribes to the telemetry node, prints the
 * readings as they arrive and runs two commands. Then it prints how to do the same from Gajim, Psi
 * or a slixmpp one-liner. Everything lives in .demo/ and stops on Ctrl-C.
 *
 * Environment: DEMO_SECONDS=N stops by itself after N seconds; DEMO_PORT (XMPP, default 5322) and
 * DEMO_MQTT_PORT (default 1884) move the demo off ports that are taken. Either port in use is a
 * loud failure, never a silent share with another demo's server. With a moved MQTT port the agent
 * runs .demo/sim.yaml: examples/sim.yaml with that one URL changed.
 */
import { randomBytes } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { parse } from "ltx";
import { howToRunCommands, SLIXMPP_SCRIPT } from "../agent/commands/howto.js";
import { decodeReadings } from "../agent/telemetry/codec.js";
import { runAllTeardowns } from "../test/harness/cleanup.js";
import { OperatorClient } from "../test/harness/operator.js";
import { type PeerProcess, spawnPeer } from "../test/harness/process.js";
import { unitSettings } from "./unit-settings.js";
import { startMosquitto } from "../test/harness/mosquitto.js";
import { startProsody } from "../test/harness/prosody.js";
import { SimMqttDevices } from "../firmware-sim/mqtt/devices.js";

const ROOT = resolve(import.meta.dirname, "..");
const DEMO = join(ROOT, ".demo");
const PORT = Number(process.env.DEMO_PORT ?? 5322);
// examples/sim.yaml names 1884; another port runs a copy of it with that URL changed.
const MQTT_PORT = Number(process.env.DEMO_MQTT_PORT ?? 1884);
const DEVICE = "sim-01";
const DEVICE_PASSWORD = "demo-device-password"; // the same as examples/sim.yaml (demo only)
const NODE = `devices/${DEVICE}/telemetry`;
const say = (s = "") => process.stdout.write(`${s}\n`);

async function waitForFile(path: string, what: string, proc: PeerProcess, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!existsSync(path)) {
    if (Date.now() > until) throw new Error(`${what} did not appear in ${ms} ms:\n${proc.outputTail(20)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Fails loudly when a port is taken: a second demo must not quietly talk to the first one's server. */
async function requireFreePort(port: number, what: string, variable: string): Promise<void> {
  const free = await new Promise<boolean>((resolvePort) => {
    const srv = createServer();
    srv.once("error", () => resolvePort(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolvePort(true)));
  });
  if (!free)
    throw new Error(
      `127.0.0.1:${port} (${what}) is already in use, perhaps by another demo: stop it, or run with ${variable}=<free port>`,
    );
}

async function main(): Promise<void> {
  rmSync(join(DEMO, "pty"), { recursive: true, force: true });
  mkdirSync(DEMO, { recursive: true, mode: 0o700 });
  await requireFreePort(PORT, "XMPP", "DEMO_PORT");
  await requireFreePort(MQTT_PORT, "MQTT", "DEMO_MQTT_PORT");
  let configFile = join(ROOT, "examples/sim.yaml");
  if (MQTT_PORT !== 1884) {
    const text = readFileSync(configFile, "utf8").replace("mqtt://127.0.0.1:1884", `mqtt://127.0.0.1:${MQTT_PORT}`);
    configFile = join(DEMO, "sim.yaml");
    // Relative paths in the config are relative to its file: .demo/ sits beside examples/.
    writeFileSync(configFile, text.replaceAll("../.demo/", "./"));
  }

  say(`Starting Prosody on 127.0.0.1:${PORT} (domain iot.test) ...`);
  const prosody = await startProsody({ port: PORT, pubsubAdmins: [`${DEVICE}@iot.test`] });
  const operatorPassword = randomBytes(9).toString("base64url");
  await prosody.register(DEVICE, DEVICE_PASSWORD);
  await prosody.register("operator", operatorPassword);
  copyFileSync(prosody.caFile!, join(DEMO, "ca.pem"));

  say(`Starting mosquitto on 127.0.0.1:${MQTT_PORT} with a simulated Zigbee2MQTT sensor and plug ...`);
  const broker = await startMosquitto({ port: MQTT_PORT, persistence: false });
  const zigbee = new SimMqttDevices({
    url: broker.url,
    sensors: [{ name: "outside_sensor", periodMs: 5000, temperature: 12, humidity: 70, expireAfterS: 30 }],
    switches: [{ name: "vent_plug", delayMs: 50 }],
  });
  await zigbee.start();

  say("Starting the simulated board (iot-sim) on a pseudo-terminal ...");
  const sim = spawnPeer(
    process.execPath,
    [
      join(ROOT, "bin/iot-sim.js"),
      "run",
      "--scenario",
      join(ROOT, "examples/scenarios/steady.yaml"),
      "--link",
      join(DEMO, "pty"),
    ],
    { name: "iot-sim", env: { IOT_USE_DIST: "1" } },
  );
  await waitForFile(join(DEMO, "pty", "agent"), "the simulator's PTY", sim);

  // With the systemd unit's node flags and environment, as on a device.
  const unit = unitSettings();
  const flags = unit.nodeFlags.join(" ");
  say(`Starting the agent: node ${flags} bin/iot-agent.js run --config ${configFile} (log in .demo/agent.log) ...`);
  const agent = spawnPeer(
    "/bin/sh",
    [
      "-c",
      `exec "${process.execPath}" ${flags} "${join(ROOT, "bin/iot-agent.js")}" run --config "${configFile}"${process.env.DEMO_LOG_LEVEL ? ` --log-level ${process.env.DEMO_LOG_LEVEL}` : ""} 2>>"${join(DEMO, "agent.log")}"`,
    ],
    { name: "iot-agent", env: { ...unit.unitEnv, AGENT_SERVER: `127.0.0.1:${PORT}`, IOT_USE_DIST: "1" } },
  );

  const op = await OperatorClient.login(prosody, "operator", operatorPassword, { name: "demo-operator" });
  const deviceFull = `${DEVICE}@iot.test/agent`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      await op.subscribe("pubsub.iot.test", NODE);
      break;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`the agent did not create ${NODE}: ${err}\n${agent.outputTail(20)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  writeFileSync(join(DEMO, "run-command.py"), SLIXMPP_SCRIPT);

  say();
  say("=".repeat(78));
  say("The demo is running.");
  say(`  XMPP server   127.0.0.1:${PORT}, domain iot.test (trust ${join(DEMO, "ca.pem")})`);
  say(`  device        ${deviceFull}  (password in examples/sim.yaml)`);
  say(`  operator      operator@iot.test  password: ${operatorPassword}`);
  say(`  telemetry     pubsub.iot.test, node ${NODE}`);
  say(`  MQTT bus      ${broker.url} (zigbee2mqtt/outside_sensor, zigbee2mqtt/vent_plug)`);
  say("=".repeat(78));
  say();
  say("Readings as the demo operator receives them (subscribed to the node):");
  const seen = new Set<string>();
  let shown = 0;
  const until = Date.now() + 20_000;
  while (shown < 8 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 250));
    for (const e of op.pubsubItems()) {
      if (e.node !== NODE || e.kind !== "item" || !e.payload || seen.has(e.id ?? "")) continue;
      seen.add(e.id ?? "");
      for (const r of decodeReadings(parse(e.payload)).readings) {
        shown++;
        say(
          `  #${r.seq}  ${r.channelId.padEnd(13)} ${String(r.value).padStart(8)} ${r.unit ?? ""}  ${r.quality}  (item ${e.id})`,
        );
      }
    }
  }

  say();
  say("The demo operator runs set-output on the MCU's fan and on the Zigbee plug, then status:");
  for (const output of ["fan", "vent"]) {
    const set = await op.execute(deviceFull, "set-output", { output, value: true });
    say(`  set-output ${output} -> ${set.status}: ${set.notes.map((n) => n.text).join(" ")}`);
  }
  const st = await op.execute(deviceFull, "status");
  for (const f of st.form?.fields ?? [])
    if (f.values.length > 0 && f.type !== "hidden")
      say(`  ${String(f.label ?? f.var).padEnd(26)} ${f.values.join(", ")}`);

  say();
  say("Try it yourself:");
  say(`  Gajim or Psi: log in as operator@iot.test (password above) to server 127.0.0.1 port ${PORT},`);
  say(`  trusting the certificate ${join(DEMO, "ca.pem")}; subscribe to the pubsub node above for telemetry.`);
  say(
    howToRunCommands(deviceFull, "operator@iot.test")
      .replace("run-command.py", join(DEMO, "run-command.py"))
      .replace(
        "/usr/bin/python3 ",
        `XMPP_HOST=127.0.0.1 XMPP_PORT=${PORT} XMPP_CA=${join(DEMO, "ca.pem")} /usr/bin/python3 `,
      ),
  );
  say();
  const seconds = Number(process.env.DEMO_SECONDS ?? 0);
  if (seconds > 0) {
    say(`DEMO_SECONDS=${seconds}: stopping in ${seconds} s.`);
    await new Promise((r) => setTimeout(r, seconds * 1000));
  } else {
    say("Press Ctrl-C to stop the agent, the simulator and Prosody.");
    await new Promise<void>((r) => {
      process.once("SIGINT", () => r());
      process.once("SIGTERM", () => r());
    });
  }
  say("Stopping ...");
  await op.stop();
  const exit = await agent.stop(20_000);
  say(`agent exited (${exit.code ?? exit.signal})`);
  await sim.stop();
  await zigbee.stop();
  await broker.dispose();
  await prosody.stop();
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => runAllTeardowns());
