/**
 * What every fleet use case is handed: the store, the clock, a progress channel and the way to the
 * server. The CLI builds them from its options (cli/context.ts); tests build them around a
 * temporary store and MemoryAccounts.
 */
import type { FleetStore } from "../store.js";
import type { AccountConnector } from "./accounts.js";

export interface FleetServices {
  store: FleetStore;
  now: () => Date;
  /** One line per step for the person running it; never a secret. */
  progress: (line: string) => void;
  connect: AccountConnector;
}
