/**
 * What every part of the update machinery shares about a release, without any crypto: the names,
 * the manifest's shape and the version order. The boot guard runs before every start of the
 * service and loads only this (never node-forge, which the signature check needs).
 */

/** What a release holds, relative to the agent directory. */
export const RELEASE_ENTRIES = ["bin", "dist", "node_modules", "package.json", "package-lock.json"] as const;

/** The package name every release of this agent carries. */
export const RELEASE_NAME = "xmpp-iot-agent";

export interface ReleaseManifest {
  name: string;
  /** MAJOR.MINOR.PATCH; releases are ordered by it (compareVersions). */
  version: string;
  /** The Node.js the archive's native addons were built for. */
  node: { abi: string; platform: string; arch: string };
  archive: {
    /** File name the release was built as (informative: devices download from a URL). */
    file: string;
    size: number;
    sha256: string;
    /** Bytes the archive unpacks to (sum of file sizes). */
    unpackedBytes: number;
  };
  /** Free bytes the device must have before it downloads (archive + unpacked + headroom). */
  minFreeBytes: number;
  /** The on-disk data formats the release writes (`iot-agent --data-formats`): name -> version. */
  dataFormats: Record<string, number>;
  createdAt: string;
}

const VERSION = /^(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})$/;

/** True for a plain MAJOR.MINOR.PATCH version (no pre-release or build suffix). */
export function isReleaseVersion(v: unknown): v is string {
  return typeof v === "string" && VERSION.test(v);
}

/** Orders two MAJOR.MINOR.PATCH versions: negative, 0 or positive. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
