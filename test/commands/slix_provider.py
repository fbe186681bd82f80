"""
A slixmpp 1.8 ad-hoc command provider: the baseline the agent's command round trip is compared
with, in the same run, on the same server. It serves one command, "set-output", single-stage (the
values come in the first execute, as the agent accepts them), sets an in-memory output and answers
status='completed' with a note saying what changed: the same work shape as the agent's set-output
minus the GPIO write.

Usage: /usr/bin/python3 slix_provider.py JID PASSWORD HOST PORT CA_FILE
Prints "ready <full jid>" once the command is registered; exits when stdin closes.
Must run with /usr/bin/python3: Debian's python3-slixmpp is only importable there.
"""
import asyncio
import sys

from slixmpp import ClientXMPP

NS_DATA = "{jabber:x:data}"


def main():
    jid, password, host, port, ca = sys.argv[1:6]
    xmpp = ClientXMPP(jid, password)
    xmpp.register_plugin("xep_0030")
    xmpp.register_plugin("xep_0004")
    xmpp.register_plugin("xep_0050")
    if ca and ca != "-":
        xmpp.ca_certs = ca
    outputs = {"relay": False}

    def set_output(iq, session):
        values = {}
        for x in iq.xml.iter(NS_DATA + "x"):
            for f in x.findall(NS_DATA + "field"):
                v = f.find(NS_DATA + "value")
                values[f.get("var")] = v.text if v is not None else None
        name = values.get("output") or "relay"
        before = outputs.get(name)
        outputs[name] = values.get("value") in ("1", "true")
        session["payload"] = None
        session["has_next"] = False
        session["notes"] = [("info", "Changed output %s: %s -> %s" % (name, before, outputs[name]))]
        return session

    def on_start(_):
        # xep_0050 clears its command list at every session start: register here.
        xmpp["xep_0050"].add_command(node="set-output", name="Set an output", handler=set_output)
        xmpp.send_presence()
        print("ready %s" % xmpp.boundjid.full, flush=True)

    xmpp.add_event_handler("session_start", on_start)
    xmpp.connect((host, int(port)))

    loop = asyncio.get_event_loop()

    async def watch_stdin():
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while await reader.read(1024):
            pass
        xmpp.disconnect()
        await asyncio.sleep(0.2)
        loop.stop()

    loop.create_task(watch_stdin())
    loop.run_forever()


if __name__ == "__main__":
    main()
