/**
 * `inventory`: what a fleet admin asks every day, one row per selected device: online or not (the
 * server's online list, XEP-0133), and from its status item (XEP-0060, docs/protocol.md) the agent
 * and firmware versions, channels, telemetry's state and spool, when it was published; from the
 * store its state, tags, credential age and last sighting. Status items are read a bounded number
 * at a time; a device whose item cannot be read says why in its row.
 */
import { forEachBounded } from "../../kernel/bounded.js";
import { ProvisioningError } from "../errors.js";
import { type StatusItem, readStatusItem } from "../inventory/status-item.js";
import { credentialAgeMs, type Selector, selectDevices } from "../selector.js";
import { type DeviceRecord, recordSeen } from "../store.js";
import type { FleetServices } from "./services.js";

export interface InventoryRow {
  id: string;
  jid: string;
  state: DeviceRecord["state"];
  tags: Record<string, string>;
  online: boolean;
  lastSeen?: string;
  /** Since the last of enrolment or rotation (or provisioning), in ms. */
  credentialAgeMs: number;
  status?: StatusItem;
  /** Why there is no status: no item yet, refused, timed out. */
  statusProblem?: string;
}

export interface InventoryRequest {
  selector: Selector;
  /** For devices whose record names no service; default each device's PEP (its bare JID). */
  pubsubService?: string;
  nodePrefix: string;
  concurrency: number;
  timeoutMs: number;
}

export async function inventory(req: InventoryRequest, services: FleetServices): Promise<InventoryRow[]> {
  const now = services.now();
  const devices = selectDevices(services.store.read(), req.selector, now);
  const connection = await services.connect();
  const rows: InventoryRow[] = [];
  try {
    const port = connection.devices;
    if (!port) throw new ProvisioningError("usage", "this connection cannot reach devices (no device port)");
    const live = devices.filter((d) => d.state !== "revoked");
    const domains = [...new Set(live.map((d) => d.jid.split("@")[1]!))];
    services.progress(`asking ${domains.join(", ") || "no domain"} who is online...`);
    const online = live.length > 0 ? await port.online(domains) : new Set<string>();
    services.progress(`reading ${live.length} status item(s), ${req.concurrency} at a time...`);
    const byId = new Map<string, Pick<InventoryRow, "status" | "statusProblem">>();
    await forEachBounded(live, req.concurrency, async (d) => {
      const service = d.pubsubService ?? req.pubsubService ?? d.jid;
      try {
        const item = readStatusItem(await port.statusItem(service, `${req.nodePrefix}${d.id}/status`, req.timeoutMs));
        byId.set(d.id, "invalid" in item ? { statusProblem: item.invalid } : { status: item });
      } catch (err) {
        byId.set(d.id, { statusProblem: (err as Error).message });
      }
    });
    // The rows come from the records as this transaction leaves them (last seen just recorded):
    // no second read of the store.
    const seen = await services.store.update((data) => {
      const ids = recordSeen(data, online, now);
      for (const d0 of devices) {
        const d = data.devices[d0.id] ?? d0;
        rows.push({
          id: d.id,
          jid: d.jid,
          state: d.state,
          tags: { ...(d.tags ?? {}) },
          online: online.has(d.jid.toLowerCase()),
          ...(d.lastSeen ? { lastSeen: d.lastSeen } : {}),
          credentialAgeMs: credentialAgeMs(d, now),
          ...(byId.get(d.id) ?? (d.state === "revoked" ? { statusProblem: "revoked" } : {})),
        });
      }
      return ids;
    });
    if (seen.length > 0) services.progress(`${seen.length} device(s) online`);
  } finally {
    await connection.close();
  }
  return rows;
}
