/** `tag`: sets and removes tags on the devices a selector picks, in one store transaction. */
import { applyTags, type Selector, selectDevices, type Tags } from "../selector.js";
import type { FleetServices } from "./services.js";

export interface TagResult {
  /** Every selected device with its tags after the change. */
  devices: Array<{ id: string; tags: Tags; changed: boolean }>;
}

export async function tagDevices(
  selector: Selector,
  change: { set: Tags; remove: string[] },
  services: FleetServices,
): Promise<TagResult> {
  const now = services.now().toISOString();
  return services.store.update((data) => {
    const devices = selectDevices(data, selector, services.now()).map((d) => {
      const changed = applyTags(d, change.set, change.remove);
      if (changed) d.updatedAt = now;
      return { id: d.id, tags: { ...(d.tags ?? {}) }, changed };
    });
    return { devices };
  });
}
