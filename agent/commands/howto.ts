/**
 * How an operator runs a command: printed by `npm run demo` and quoted in docs/commands.md. The
 * slixmpp script is the one the real-peer suite runs (test/commands/howto.test.ts), so the text an
 * operator copies is known to work.
 */

/**
 * A single-stage execute from slixmpp (Debian: `apt install python3-slixmpp`, run with /usr/bin/python3).
 * Arguments: operator JID, password, device full JID, command node, then field=value pairs.
 * Optional environment: XMPP_HOST/XMPP_PORT (no SRV lookup), XMPP_CA (PEM to trust).
 */
export const SLIXMPP_SCRIPT = `import os, sys, slixmpp
jid, pw, device, node, *kv = sys.argv[1:]
c = slixmpp.ClientXMPP(jid, pw)
c.register_plugin("xep_0050")
if os.environ.get("XMPP_CA"): c.ca_certs = os.environ["XMPP_CA"]
async def go(_):
    iq = c.make_iq_set(ito=device)
    iq["command"]["node"], iq["command"]["action"] = node, "execute"
    if kv:
        f = c["xep_0004"].make_form(ftype="submit")
        for a in kv: f.add_field(var=a.split("=", 1)[0], value=a.split("=", 1)[1])
        iq["command"].append(f)
    try:
        r = (await iq.send(timeout=15))["command"]
        print(r["status"])
        for t, x in r["notes"]: print(t + ":", x)
        for f in r.xml.iter("{jabber:x:data}field"):
            vals = [v.text or "" for v in f.findall("{jabber:x:data}value")]
            if vals and f.get("type") != "hidden": print(f.get("var"), "=", ", ".join(vals))
    except slixmpp.exceptions.IqError as e:
        print("error:", e.iq["error"]["condition"], e.iq["error"]["text"])
    finally:
        c.disconnect()
c.add_event_handler("session_start", go)
h = os.environ.get("XMPP_HOST")
c.connect(*([(h, int(os.environ.get("XMPP_PORT", "5222")))] if h else []))
c.process(forever=False)
`;

export function howToRunCommands(deviceJid: string, operatorJid = "operator@example.org"): string {
  return `Control commands (XEP-0050 ad-hoc commands) of ${deviceJid}

From Gajim (1.7): Accounts > Discover Services..., Address ${deviceJid} (the full JID), Enter, OK on
"not browsable", select the device's row, Command; pick a command, Execute, fill the form, Complete.
From profanity: /cmd list ${deviceJid}, /cmd exec set-output ${deviceJid}, /field1 relay,
/field2 on, /form submit.
From Psi/Psi+: right-click the contact > Execute command, pick a command, fill the form, Finish.

From a slixmpp script (all values in one request; prints status, notes and result fields):
  /usr/bin/python3 run-command.py ${operatorJid} PASSWORD ${deviceJid} set-output output=relay value=1
where run-command.py is:
${SLIXMPP_SCRIPT.replace(/^/gm, "    ")}
Commands: status, list-channels, read, set-output, set-sampling, configure-channel, serial-command,
restart-drivers (see docs/commands.md for their fields).`;
}
