/**
 * `watch`: subscribes the admin's session (its full JID) to the selected devices' telemetry nodes
 * (XEP-0060) and hands over each new reading until told to stop, then unsubscribes. A reading seen
 * before (a repeated notification, a re-sent batch) or older than the newest of its channel is
 * not handed over again.
 */
import { ProvisioningError } from "../errors.js";
import { readReadings, type WatchedReading } from "../inventory/readings.js";
import { type Selector, selectDevices } from "../selector.js";
import type { FleetServices } from "./services.js";

export interface WatchRequest {
  selector: Selector;
  /** For devices whose record names no service; default each device's PEP (its bare JID). */
  pubsubService?: string;
  nodePrefix: string;
  concurrency: number;
  timeoutMs: number;
}

export interface WatchSummary {
  devices: number;
  subscribed: number;
  refused: Array<{ node: string; why: string }>;
  readings: number;
}

export async function watchTelemetry(
  req: WatchRequest,
  services: FleetServices,
  onReading: (r: WatchedReading) => void,
  until: Promise<void>,
): Promise<WatchSummary> {
  const devices = selectDevices(services.store.read(), req.selector, services.now()).filter(
    (d) => d.state !== "revoked",
  );
  if (devices.length === 0) throw new ProvisioningError("device_unknown", "the selector picks no device to watch");
  const node = (id: string) => `${req.nodePrefix}${id}/telemetry`;
  const targets = devices.map((d) => ({ service: d.pubsubService ?? req.pubsubService ?? d.jid, node: node(d.id) }));
  const deviceOf = new Map(devices.map((d) => [node(d.id), d.id]));
  const newest = new Map<string, number>();
  const summary: WatchSummary = { devices: devices.length, subscribed: 0, refused: [], readings: 0 };
  const connection = await services.connect();
  try {
    const port = connection.devices;
    if (!port) throw new ProvisioningError("usage", "this connection cannot reach devices (no device port)");
    services.progress(`subscribing to ${targets.length} telemetry node(s), ${req.concurrency} at a time...`);
    const watching = await port.watch(
      targets,
      (n, payload) => {
        const device = deviceOf.get(n);
        if (!device) return;
        for (const r of readReadings(payload)) {
          // The node says whose readings these are, whatever the payload claims.
          const key = `${device}\u0000${r.channel}`;
          if ((newest.get(key) ?? -1) >= r.seq) continue;
          newest.set(key, r.seq);
          summary.readings++;
          onReading({ ...r, device });
        }
      },
      {
        timeoutMs: req.timeoutMs,
        concurrency: req.concurrency,
        onRefused: (n, why) => summary.refused.push({ node: n, why }),
      },
    );
    summary.subscribed = watching.subscribed;
    services.progress(
      `watching ${watching.subscribed} device(s)${summary.refused.length ? `; ${summary.refused.length} refused (e.g. ${summary.refused[0]!.node}: ${summary.refused[0]!.why})` : ""}`,
    );
    try {
      await until;
    } finally {
      await watching.stop();
    }
  } finally {
    await connection.close();
  }
  return summary;
}
