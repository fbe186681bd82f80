/**
 * Plays simulated Zigbee2MQTT-style devices on a broker, for the demo or by hand:
 *
 *   node --import tsx firmware-sim/mqtt/cli.ts --url mqtt://127.0.0.1:1883 [--sensor living] [--switch lamp]
 *
 * (Not yet an `iot-sim mqtt` subcommand: firmware-sim/cli.ts belongs to another room; see docs/mqtt.md.)
 */
import { parseArgs } from "node:util";
import { SimMqttDevices } from "./devices.js";

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: "string", default: "mqtt://127.0.0.1:1883" },
      sensor: { type: "string", multiple: true },
      switch: { type: "string", multiple: true },
      "period-ms": { type: "string", default: "5000" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(
      "Usage: cli.ts --url mqtt://127.0.0.1:1883 [--sensor NAME]... [--switch NAME]... [--period-ms N]\n",
    );
    return 0;
  }
  const periodMs = Number(values["period-ms"]);
  const sim = new SimMqttDevices({
    url: values.url!,
    sensors: (values.sensor ?? ["living"]).map((name) => ({ name, periodMs, expireAfterS: (periodMs * 3) / 1000 })),
    switches: (values.switch ?? ["lamp"]).map((name) => ({ name, delayMs: 50 })),
  });
  await sim.start();
  process.stderr.write(`simulated MQTT devices on ${values.url}: Ctrl-C to stop\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await sim.stop();
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${String(err)}\n`);
      process.exit(1);
    },
  );
}
