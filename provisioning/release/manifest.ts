/**
 * The signed manifest of an agent release (issue 17): what a device checks before it downloads a
 * byte. It rides in the same signed envelope as enrolment bundles (provisioning/signed.ts: the
 * fleet CA signs the canonical JSON, the format name is bound in, so a bundle can never pass for a
 * release). The archive it describes is a gzip'd tar of the agent's directory as
 * docs/deployment.md installs it: bin/, dist/, node_modules/ (production dependencies, native
 * addons built for `node.abi` on `node.platform`-`node.arch`), package.json, package-lock.json.
 *
 * Native addons are shipped prebuilt, not rebuilt on the device: a device in the field often has
 * neither a compiler (onoff's epoll has no prebuilt binary) nor a route to the npm registry, and an
 * update must not depend on either. The price is one release per Node ABI and architecture the
 * fleet runs; the device refuses a release built for another.
 */
import { ProvisioningError } from "../errors.js";
import { signDocument, type SignedDocument, type TrustAnchor, verifyDocument } from "../signed.js";
import { isReleaseVersion, RELEASE_NAME, type ReleaseManifest } from "./format.js";

export { compareVersions, isReleaseVersion, RELEASE_ENTRIES, RELEASE_NAME, type ReleaseManifest } from "./format.js";

export const RELEASE_FORMAT = "xmpp-iot-agent-release";
export const RELEASE_FORMAT_VERSION = 1;

export type SignedRelease = SignedDocument<ReleaseManifest>;

export function signRelease(manifest: ReleaseManifest, ca: Parameters<typeof signDocument>[3]): SignedRelease {
  return signDocument(RELEASE_FORMAT, RELEASE_FORMAT_VERSION, manifest, ca);
}

function malformed(message: string, context: Record<string, unknown> = {}): ProvisioningError {
  return new ProvisioningError("bundle_malformed", `release manifest: ${message}`, context);
}

const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const isText = (v: unknown, max = 200): v is string => typeof v === "string" && v.length > 0 && v.length <= max;

/** Checks the signature against the fleet CA, then the payload's shape. Throws ProvisioningError. */
export function verifyRelease(doc: unknown, trust: TrustAnchor): ReleaseManifest {
  const { payload: p } = verifyDocument(doc, RELEASE_FORMAT, RELEASE_FORMAT_VERSION, trust, "release manifest");
  if (p.name !== RELEASE_NAME) throw malformed(`name ${JSON.stringify(p.name)} is not ${RELEASE_NAME}`);
  if (!isReleaseVersion(p.version)) throw malformed(`version ${JSON.stringify(p.version)} is not MAJOR.MINOR.PATCH`);
  const node = p.node as Record<string, unknown> | undefined;
  if (!node || !isText(node.abi, 10) || !isText(node.platform, 20) || !isText(node.arch, 20))
    throw malformed("node.abi, node.platform and node.arch are required");
  const a = p.archive as Record<string, unknown> | undefined;
  if (
    !a ||
    !isText(a.file) ||
    !isCount(a.size) ||
    !isCount(a.unpackedBytes) ||
    typeof a.sha256 !== "string" ||
    !/^[0-9a-f]{64}$/.test(a.sha256)
  )
    throw malformed(
      "archive.file, archive.size, archive.unpackedBytes and archive.sha256 (64 hex digits) are required",
    );
  if (!isCount(p.minFreeBytes)) throw malformed("minFreeBytes must be a whole number");
  const f = p.dataFormats as Record<string, unknown> | undefined;
  if (
    !f ||
    typeof f !== "object" ||
    Array.isArray(f) ||
    Object.keys(f).length > 50 ||
    !Object.entries(f).every(([k, v]) => isText(k, 40) && isCount(v))
  )
    throw malformed("dataFormats must map each data format to its version");
  if (!isText(p.createdAt, 40)) throw malformed("createdAt is required");
  return {
    name: p.name,
    version: p.version,
    node: { abi: node.abi, platform: node.platform, arch: node.arch },
    archive: { file: a.file, size: a.size, sha256: a.sha256, unpackedBytes: a.unpackedBytes },
    minFreeBytes: p.minFreeBytes,
    dataFormats: { ...(f as Record<string, number>) },
    createdAt: p.createdAt,
  };
}
