/**
 * The whole agent config: each room owns its section's schema, this file only composes them.
 * Documented key by key in docs/configuration.md.
 */
import { boardConfigSchema } from "../../drivers/config.js";
import { provisioningConfigSchema } from "../../provisioning/config.js";
import { commandsConfigSchema } from "../commands/config.js";
import { memoryConfigSchema } from "../health/config.js";
import { telemetryConfigSchema } from "../telemetry/config.js";
import { mqttMirrorConfigSchema } from "../telemetry/mqtt-mirror-config.js";
import { updateConfigSchema } from "../update/config.js";
import { xmppConfigSchema } from "../../xmpp/config.js";
import { arr, bareJid, def, obj, oneOf, opt, str, type Infer } from "../../kernel/schema-dsl.js";

export const deviceSchema = obj({
  /** Stable device id: used in pubsub node names, logs and the fleet store. */
  id: str({ pattern: /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, patternHint: "1-63 letters, digits, '.', '_' or '-'" }),
  name: opt(str({ maxLength: 200 })),
  /** Where the agent keeps state (spool, sequence counter, audit log). Relative paths are relative to the config file. */
  dataDir: def(str({ minLength: 1 }), "/var/lib/iot-agent"),
});

export const operatorSchema = obj({
  /** A bare JID (alice@example.org) or a whole domain (example.org). */
  jid: bareJid(),
  /** Command nodes this operator may run; "*" grants all. */
  commands: def(arr(str({ minLength: 1 }), { minItems: 1 }), ["*"]),
});

export const pubsubSchema = obj({
  /** Pubsub service JID (pubsub.example.org), or the device's own bare JID for PEP. Empty: PEP. */
  service: opt(bareJid()),
  /** Node name prefix; nodes are <prefix><device id>/<kind>. */
  nodePrefix: def(str(), "devices/"),
});

/**
 * Which backend drives the board. The board section names lines and devices; this picks real
 * hardware or the simulator for them, so the same board description runs on a Pi and a laptop.
 */
export const hardwareSchema = obj({
  /** onoff: Linux sysfs GPIO. sim: the in-process simulated pins of firmware-sim/. */
  gpio: def(oneOf(["onoff", "sim"]), "onoff"),
  /** serialport: real serial devices (or a PTY from `iot-sim run`). sim: in-process simulated MCU. */
  serial: def(oneOf(["serialport", "sim"]), "serialport"),
});

export const logSchema = obj({
  level: def(oneOf(["debug", "info", "warn", "error"]), "info"),
});

export const agentConfigSchema = obj({
  device: deviceSchema,
  xmpp: xmppConfigSchema,
  operators: def(arr(operatorSchema, { maxItems: 1000 }), []),
  pubsub: pubsubSchema,
  hardware: hardwareSchema,
  log: logSchema,
  memory: memoryConfigSchema,
  board: boardConfigSchema,
  commands: commandsConfigSchema,
  telemetry: telemetryConfigSchema,
  mqttMirror: mqttMirrorConfigSchema,
  provisioning: provisioningConfigSchema,
  update: updateConfigSchema,
});

export type AgentConfig = Exclude<Infer<typeof agentConfigSchema>, symbol>;
export type OperatorConfig = AgentConfig["operators"][number];
