/**
 * Publishing the fleet's revocation list: the store's revocations signed by the fleet CA, written
 * to the fleet home and optionally one more file for delivery to devices (public, 0644).
 */
import type { FleetCa } from "../ca.js";
import { writeFileAtomic } from "../fsutil.js";
import { createRevocationList } from "../revocation.js";
import type { FleetStore } from "../store.js";

export interface RevocationOutput {
  /** Called only when the list is signed; a revocation is recorded in the store before it. */
  loadCa: () => FleetCa;
  /** HOME/revocations.json */
  file: string;
  /** A copy for delivery (`--export`, `revocations --out`). */
  exportFile?: string;
}

/** Writes the signed list; returns the fleet home's copy. */
export function publishRevocations(store: FleetStore, now: Date, out: RevocationOutput): string {
  const ca = out.loadCa();
  const { sequence, bundleIds, certSerials, jids } = store.read().revocations;
  const list = createRevocationList({ issuedAt: now.toISOString(), sequence, bundleIds, certSerials, jids }, ca);
  const text = `${JSON.stringify(list, null, 2)}\n`;
  writeFileAtomic(out.file, text, 0o644);
  if (out.exportFile) writeFileAtomic(out.exportFile, text, 0o644);
  return out.file;
}
