/**
 * The peers every memory measurement runs against, the same for bench/memory.ts and
 * bench/memory/diagnose.ts: the harness Prosody (warnings-only log, pubsub items in memory,
 * Prosody's default hibernation of 600 s; see docs/benchmarks.md "Server side"), the accounts, and,
 * when a configuration has MQTT, the harness mosquitto with a simulated Zigbee2MQTT sensor and plug;
 * then the slixmpp operator that asks the agents for `status`.
 */
import { SimMqttDevices } from "../../firmware-sim/mqtt/devices.js";
import { type MosquittoHandle, startMosquitto } from "../../test/harness/mosquitto.js";
import { OperatorClient } from "../../test/harness/operator.js";
import { type ProsodyHandle, startProsody } from "../../test/harness/prosody.js";

export interface Stage {
  prosody: ProsodyHandle;
  broker: MosquittoHandle | undefined;
  op: OperatorClient;
  /** Stops what start() started, the operator first. */
  stop(): Promise<void>;
}

export async function startStage(opts: {
  /** Device accounts: registered, and admins of the pubsub component (they create their nodes there, as in the demo). */
  devices: string[];
  /** More accounts to register, with their passwords (the operator's is added here). */
  accounts?: Array<[user: string, password: string]>;
  password: string;
  mqtt: boolean;
  operatorName: string;
  operatorMaxSeconds: number;
}): Promise<Stage> {
  const prosody = await startProsody({
    pubsubAdmins: opts.devices.map((d) => `${d}@iot.test`),
    // Prosody's default (the harness's is 30 s): an outage is resumed, as on a real server.
    smacksHibernationTime: 600,
    extraGlobalLua: 'log = { warn = "*console" }\nstorage = { pubsub_data = "memory" }',
  });
  for (const d of opts.devices) await prosody.register(d, opts.password);
  await prosody.register("operator", opts.password);
  for (const [user, password] of opts.accounts ?? []) await prosody.register(user, password);
  const broker = opts.mqtt ? await startMosquitto({ persistence: false }) : undefined;
  const zigbee = broker
    ? new SimMqttDevices({
        url: broker.url,
        sensors: [{ name: "outside_sensor", periodMs: 5000, temperature: 12, humidity: 70, expireAfterS: 30 }],
        switches: [{ name: "vent_plug", delayMs: 50 }],
      })
    : undefined;
  await zigbee?.start();
  const op = await OperatorClient.login(prosody, "operator", opts.password, {
    name: opts.operatorName,
    maxSeconds: opts.operatorMaxSeconds,
  });
  return {
    prosody,
    broker,
    op,
    async stop() {
      await op.stop();
      await zigbee?.stop();
      await broker?.dispose();
      await prosody.stop();
    },
  };
}
