/**
 * `list`: the devices a selector picks (all by default), sorted by id. With `online`, each domain
 * is first asked who is online, which records last-seen times and marks provisioned devices that
 * logged in as enrolled.
 */
import { type Selector, selectDevices } from "../selector.js";
import { type DeviceRecord, recordSeen } from "../store.js";
import { withAccounts } from "./accounts.js";
import type { FleetServices } from "./services.js";

export async function listDevices(
  opts: { online: boolean; selector?: Selector },
  services: FleetServices,
): Promise<DeviceRecord[]> {
  if (opts.online) {
    const domains = new Set(Object.values(services.store.read().devices).map((d) => d.jid.split("@")[1]!));
    const online: string[] = [];
    await withAccounts(services.connect, async (accounts) => {
      for (const domain of domains) {
        services.progress(`asking ${domain} for its online users...`);
        online.push(...(await accounts.onlineUsers(domain)));
      }
    });
    await services.store.update((data) => recordSeen(data, online, services.now()));
  }
  return selectDevices(services.store.read(), opts.selector ?? {}, services.now());
}
