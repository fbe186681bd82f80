/**
 * Publishing the fleet's revocation list: the store's revocations signed by the fleet CA, written
 * to the fleet home and optionally one more file for delivery to devices (public, 0644). Beside it,
 * what the servers need to refuse revoked client certificates (SASL EXTERNAL): an X.509 CRL
 * (`revoked-certs.crl.pem`, Prosody) and an ejabberd ACL fragment (`revoked-devices.ejabberd.yml`).
 */
import { dirname, join } from "node:path";
import type { FleetCa } from "../ca.js";
import { createCrl, ejabberdRevokedAcl } from "../crl.js";
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
  const home = dirname(out.file);
  writeFileAtomic(join(home, CRL_FILE), createCrl(ca, { serials: certSerials, number: sequence, now }), 0o644);
  writeFileAtomic(join(home, EJABBERD_ACL_FILE), ejabberdRevokedAcl(jids), 0o644);
  return out.file;
}

/** In the fleet home, rewritten with every revocation list. */
export const CRL_FILE = "revoked-certs.crl.pem";
export const EJABBERD_ACL_FILE = "revoked-devices.ejabberd.yml";
