/** How `iot-fleet` shows stored values to a person; --json prints the stored values instead. */
import type { CredentialPath } from "../store.js";

/** The words of docs/provisioning.md and of the bundle's credential type ("invite", "password-sealed", "password"). */
export function describeCredentialPath(path: CredentialPath): string {
  switch (path) {
    case "invite":
      return "invite";
    case "admin-password-sealed":
      return "admin path, password-sealed";
    case "admin-password":
      return "admin path, password in clear";
  }
}

/** Left-aligned columns two spaces apart, no trailing blanks. */
export function formatTable(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd(),
  );
}

/** One line of at most `n` characters: whitespace runs become one space, a longer text ends in "...". */
export function truncate(s: string, n: number): string {
  const one = s.replace(/\s+/g, " ").trim();
  return one.length > n ? `${one.slice(0, n - 3)}...` : one;
}

/** Bytes as a person reads them: "812 B", "1.4 MiB". */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB"];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}
