/**
 * Everything a device checks before it downloads a byte of a release: the fleet CA's signature,
 * that the version is newer than the running one (a downgrade only when explicitly allowed), that
 * the native addons were built for this Node.js and machine, that the running version could read
 * every data format the release writes (it is where a rollback lands: formats.ts), that the archive
 * fits the download bound, and that the disk has the room the manifest asks for.
 */
import type { TrustAnchor } from "../../provisioning/signed.js";
import { compareVersions, type ReleaseManifest, verifyRelease } from "../../provisioning/release/manifest.js";
import { UpdateError } from "./errors.js";
import { unreadable } from "./formats.js";

export interface RunningAgent {
  version: string;
  node: ReleaseManifest["node"];
}

export interface ReleaseCheckOptions {
  trust: TrustAnchor;
  running: RunningAgent;
  /** Accept an older version (a deliberate rollback by the fleet admin). */
  allowDowngrade?: boolean;
  /** Largest archive the device downloads. */
  maxDownloadBytes: number;
  /** Free bytes where releases are kept. */
  freeBytes: number;
  /** The data formats the running version reads (formats.ts READS): where a rollback lands. */
  reads: Readonly<Record<string, readonly number[]>>;
}

export function checkRelease(doc: unknown, o: ReleaseCheckOptions): ReleaseManifest {
  let m: ReleaseManifest;
  try {
    m = verifyRelease(doc, o.trust);
  } catch (err) {
    throw new UpdateError("update_untrusted", (err as Error).message, {}, { cause: err });
  }
  const order = compareVersions(m.version, o.running.version);
  if (order === 0)
    throw new UpdateError("update_not_newer", `version ${m.version} is already running`, { version: m.version });
  if (order < 0 && !o.allowDowngrade)
    throw new UpdateError(
      "update_not_newer",
      `version ${m.version} is older than the running ${o.running.version} (a downgrade must be asked for)`,
      { version: m.version, running: o.running.version },
    );
  const { node } = o.running;
  if (m.node.abi !== node.abi || m.node.platform !== node.platform || m.node.arch !== node.arch)
    throw new UpdateError(
      "update_wrong_platform",
      `release built for Node ABI ${m.node.abi} on ${m.node.platform}-${m.node.arch}, this device runs ABI ${node.abi} on ${node.platform}-${node.arch}`,
      { release: m.node, device: node },
    );
  const cannotRead = unreadable(m.dataFormats, o.reads);
  if (cannotRead.length > 0)
    throw new UpdateError(
      "update_formats",
      `release ${m.version} writes data this version could not read after a rollback: ${cannotRead.join(", ")}`,
      { formats: cannotRead },
    );
  if (m.archive.size > o.maxDownloadBytes)
    throw new UpdateError(
      "update_too_large",
      `archive is ${m.archive.size} bytes, over the device's limit of ${o.maxDownloadBytes}`,
      { size: m.archive.size, limit: o.maxDownloadBytes },
    );
  if (m.minFreeBytes > o.freeBytes)
    throw new UpdateError("update_no_space", `release needs ${m.minFreeBytes} bytes free, ${o.freeBytes} are`, {
      needed: m.minFreeBytes,
      free: o.freeBytes,
    });
  return m;
}
