/**
 * "Connect once to prove it works": loads the config enrol just wrote, exactly as `iot-agent run`
 * will, starts an XmppSession, and waits for it to come online (or to report a fault such as a
 * refused password or an untrusted certificate), then stops it.
 */
import type { Logger } from "../../kernel/log.js";
import { silentLogger } from "../../kernel/log.js";
import { loadConfig } from "../../agent/config/load.js";
import { XmppSession } from "../../xmpp/session.js";
import { ProvisioningError } from "../errors.js";

export type ConnectCheck = (configFile: string, opts: { timeoutMs: number; log: Logger }) => Promise<{ jid: string }>;

export const connectOnce: ConnectCheck = async (configFile, { timeoutMs, log = silentLogger }) => {
  const { config, password } = loadConfig(configFile, {});
  const session = new XmppSession({ config: config.xmpp, password, log, presence: false });
  try {
    return await new Promise<{ jid: string }>((resolve, reject) => {
      const timer = setTimeout(() => {
        const last = session.stats().lastError;
        reject(
          new ProvisioningError("enroll_login_failed", `not online within ${timeoutMs} ms${last ? `: ${last}` : ""}`, {
            timeoutMs,
          }),
        );
      }, timeoutMs);
      session.once("online", (info) => {
        clearTimeout(timer);
        resolve({ jid: info.jid });
      });
      session.once("fault", (err) => {
        clearTimeout(timer);
        reject(
          new ProvisioningError(
            "enroll_login_failed",
            `login failed: ${err.message}`,
            { cause: err.code },
            { cause: err },
          ),
        );
      });
      session.start();
    });
  } finally {
    await session.stop();
  }
};
