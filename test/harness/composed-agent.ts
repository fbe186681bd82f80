/**
 * The whole agent as a user runs it, for end-to-end suites: the config text is written to a file,
 * loaded the way `iot-agent run` loads it (password from AGENT_PASSWORD), composed by createAgent,
 * started, and awaited online. Stop it with `agent.stop()`.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../agent/config/load.js";
import { type Agent, createAgent } from "../../agent/main.js";
import { testLogger } from "../xmpp/helpers.js";

export interface ComposedAgent {
  agent: Agent;
  /** Bound full JID. */
  jid: string;
  /** The config file written. */
  file: string;
}

export async function startComposedAgent(opts: {
  /** Where the config file goes. */
  dir: string;
  /** Config YAML. */
  config: string;
  password: string;
  /** File name (default agent.yaml). */
  name?: string;
}): Promise<ComposedAgent> {
  const file = join(opts.dir, opts.name ?? "agent.yaml");
  writeFileSync(file, opts.config);
  const agent = await createAgent(loadConfig(file, { AGENT_PASSWORD: opts.password }), { log: testLogger() });
  const online = new Promise<{ jid: string }>((resolve) => agent.session.once("online", resolve));
  await agent.start();
  return { agent, jid: (await online).jid, file };
}

/**
 * The part every end-to-end config shares: device, xmpp (to a harness server on 127.0.0.1, trusting
 * its CA), pubsub and the operators (default: operator@<domain>). `xmpp` adds lines under `xmpp:`
 * (keepalive, reconnect); a `pubsubService` of null means PEP. Append the `hardware`, `board` and
 * `telemetry` sections (e.g. `simTemperatureBoard()`).
 */
export function agentConfigHead(o: {
  id: string;
  dataDir: string;
  port: number;
  caFile: string | null;
  domain?: string;
  pubsubService?: string | null;
  xmpp?: string[];
  operators?: string[];
}): string {
  const domain = o.domain ?? "iot.test";
  const service = o.pubsubService === undefined ? `pubsub.${domain}` : o.pubsubService;
  return [
    "device:",
    `  id: ${o.id}`,
    `  dataDir: ${o.dataDir}`,
    "xmpp:",
    `  jid: ${o.id}@${domain}`,
    `  server: 127.0.0.1:${o.port}`,
    `  caFile: ${o.caFile}`,
    ...(o.xmpp ?? []).map((l) => `  ${l}`),
    "pubsub:",
    ...(service ? [`  service: ${service}`] : []),
    "  nodePrefix: devices/",
    "operators:",
    ...(o.operators ?? [`operator@${domain}`]).map((jid) => `  - jid: ${jid}`),
    "",
  ].join("\n");
}

/**
 * The simulated board most telemetry suites need: one temperature channel on a simulated MCU,
 * read every `intervalMs`. Follow it with the `telemetry` section.
 */
export function simTemperatureBoard(intervalMs = 100): string {
  return `hardware: { gpio: sim, serial: sim }
board:
  serial:
    mcu0: { path: /dev/ttySIM0 }
  channels:
    temperature: { source: serial, link: mcu0, sensor: temperature, kind: temperature, unit: "°C", intervalMs: ${intervalMs} }
`;
}
