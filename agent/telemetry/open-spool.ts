/**
 * Builds a spool store from its config. Both uplinks get theirs here: the XMPP spool
 * (TelemetryService, from `telemetry.spool`) and the MQTT mirror's (mirrorSpoolConfig), so one
 * config value means the same in both, whichever store it picks.
 */
import type { Logger } from "../../kernel/log.js";
import type { Timers } from "../../kernel/timers.js";
import { SPOOL_DEFAULTS, type SpoolConfig } from "./config.js";
import { FileSpoolStore, fitSegmentBytes } from "./file-spool.js";
import { MemorySpoolStore, type SpoolStore } from "./spool.js";

export interface SpoolPlace {
  /** The file store's directory (created if needed); unused by the memory store. */
  dir: string;
  timers?: Timers;
  logger?: Logger;
}

/** Opens the store `config.store` names; a file store recovers what a crash left in `place.dir`. */
export async function openSpoolStore(config: SpoolConfig, place: SpoolPlace): Promise<SpoolStore> {
  const common = {
    maxBytes: config.maxBytes,
    maxRecordBytes: config.maxRecordBytes,
    overflow: config.overflow,
    ...(place.logger ? { logger: place.logger } : {}),
  };
  if (config.store === "memory") return new MemorySpoolStore(common);
  return FileSpoolStore.open({
    ...common,
    dir: place.dir,
    segmentBytes: config.segmentBytes,
    fsync: config.fsync,
    fsyncIntervalMs: config.fsyncIntervalMs,
    ...(place.timers ? { timers: place.timers } : {}),
  });
}

/** How the XMPP spool lays out and flushes its files; the mirror's file spool follows it. */
export type SpoolFileLayout = Pick<SpoolConfig, "segmentBytes" | "maxRecordBytes" | "fsync" | "fsyncIntervalMs">;

/**
 * The mirror's spool: its own store, bound and overflow policy (the `mqttMirror.spool` section), on
 * the XMPP spool's file layout when it is a file store, so both spools behave alike on disk.
 * Without a layout, or for the memory store, the rest is the `telemetry.spool` defaults.
 */
export function mirrorSpoolConfig(
  own: Pick<SpoolConfig, "store" | "maxBytes" | "overflow">,
  fileLayout: SpoolFileLayout | undefined,
): SpoolConfig {
  const layout = own.store === "file" && fileLayout ? fileLayout : SPOOL_DEFAULTS;
  return {
    store: own.store,
    maxBytes: own.maxBytes,
    overflow: own.overflow,
    // The mirror's bound is its own, usually smaller: its segments shrink to fit it (the file store
    // caps a record at a segment).
    segmentBytes: fitSegmentBytes(layout.segmentBytes, own.maxBytes),
    maxRecordBytes: layout.maxRecordBytes,
    fsync: layout.fsync,
    fsyncIntervalMs: layout.fsyncIntervalMs,
  };
}
