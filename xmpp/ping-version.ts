/** XEP-0199 XMPP Ping (answering) and XEP-0092 Software Version. */
import os from "node:os";
import { Element } from "ltx";

export const NS_PING = "urn:xmpp:ping";
export const NS_VERSION = "jabber:iq:version";

export function pingHandler(): () => Promise<undefined> {
  return async () => undefined;
}

export function versionHandler(name: string, version: string, includeOs: boolean): () => Promise<Element> {
  return async () => {
    const q = new Element("query", { xmlns: NS_VERSION });
    q.c("name").t(name);
    q.c("version").t(version);
    // XEP-0092 §3 notes disclosing the OS may help attackers; configurable.
    if (includeOs) q.c("os").t(`${os.type()} ${os.release()} ${os.arch()}`);
    return q;
  };
}
