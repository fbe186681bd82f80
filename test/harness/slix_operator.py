#!/usr/bin/python3
"""A real third-party XMPP "operator" client for tests, built on slixmpp 1.8.

Driven by test/harness/operator.ts (named slix_operator.py so it does not shadow the stdlib module "operator") over JSON lines:
  stdin : {"id": N, "op": "<name>", "args": {...}}
  stdout: {"id": N, "ok": true, "result": ...}
          {"id": N, "ok": false, "error": {"kind": ..., "message": ..., "traceback": ...}}
          {"event": "<kind>", ...}            (unsolicited: message, presence, pubsub, disconnected, ...)
stderr carries slixmpp's own log (WARNING and up; DEBUG with OPERATOR_DEBUG=1).

Why raw IQs built with ElementTree instead of slixmpp's xep_0050/xep_0060 plugins: the tests want
the exact response XML and full control of what goes on the wire (sessionid, action, form values),
and the raw path has no hidden state (xep_0050 clears its command list at every session start).

Safety: the process exits on stdin EOF (its parent died or stopped it) and after --max-seconds
(default 900) no matter what, so a wedged test can never leave it running.
Must run with /usr/bin/python3: Debian's python3-slixmpp is only importable there.
"""

import argparse
import asyncio
import json
import logging
import os
import sys
import traceback
import xml.etree.ElementTree as ET

from slixmpp import ClientXMPP
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream import tostring
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

NS_CMD = "http://jabber.org/protocol/commands"
NS_DATA = "jabber:x:data"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_PUBSUB_OWNER = "http://jabber.org/protocol/pubsub#owner"
NS_PUBSUB_EVENT = "http://jabber.org/protocol/pubsub#event"
NS_DELAY = "urn:xmpp:delay"


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def xml_str(el):
    return tostring(el) if el is not None else None


class OpError(Exception):
    def __init__(self, kind, message, **extra):
        super().__init__(message)
        self.kind = kind
        self.extra = extra


# ---------------------------------------------------------------- data forms (XEP-0004)

def parse_form(x):
    if x is None:
        return None
    fields = []
    for f in x.findall("{%s}field" % NS_DATA):
        fields.append({
            "var": f.get("var"),
            "type": f.get("type"),
            "label": f.get("label"),
            "required": f.find("{%s}required" % NS_DATA) is not None,
            "values": [v.text or "" for v in f.findall("{%s}value" % NS_DATA)],
            "options": [
                {"label": o.get("label"), "value": (o.findtext("{%s}value" % NS_DATA) or "")}
                for o in f.findall("{%s}option" % NS_DATA)
            ],
        })
    items = []
    for item in x.findall("{%s}item" % NS_DATA):
        row = {}
        for f in item.findall("{%s}field" % NS_DATA):
            row[f.get("var")] = [v.text or "" for v in f.findall("{%s}value" % NS_DATA)]
        items.append(row)
    return {
        "type": x.get("type"),
        "title": x.findtext("{%s}title" % NS_DATA),
        "instructions": [i.text or "" for i in x.findall("{%s}instructions" % NS_DATA)],
        "fields": fields,
        "items": items,
    }


def build_form(values, form_type="submit", form_ns=None):
    """values: {var: str | bool | number | [str]}; FORM_TYPE hidden field when form_ns given."""
    x = ET.Element("{%s}x" % NS_DATA, type=form_type)
    if form_ns:
        f = ET.SubElement(x, "{%s}field" % NS_DATA, var="FORM_TYPE", type="hidden")
        ET.SubElement(f, "{%s}value" % NS_DATA).text = form_ns
    for var, val in (values or {}).items():
        f = ET.SubElement(x, "{%s}field" % NS_DATA, var=var)
        vals = val if isinstance(val, list) else [val]
        for v in vals:
            if isinstance(v, bool):
                v = "1" if v else "0"
            ET.SubElement(f, "{%s}value" % NS_DATA).text = str(v)
    return x


class Operator:
    def __init__(self):
        self.xmpp = None
        self.loop = asyncio.get_event_loop()

    # ------------------------------------------------------------ connection

    async def op_connect(self, jid, password, host, port, ca_certs=None, resource=None, tls="required",
                         timeout=10, initial_presence=True, stream_management=False, auto_authorize=None):
        if self.xmpp is not None:
            raise OpError("state", "already connected; disconnect first")
        x = ClientXMPP(jid if resource is None else "%s/%s" % (jid, resource), password)
        x.register_plugin("xep_0030")
        x.register_plugin("xep_0199")
        if stream_management:
            x.register_plugin("xep_0198")
        if ca_certs:
            x.ca_certs = ca_certs
        # None = leave subscription requests to the test (roster_accept); True/False = auto.
        x.auto_authorize = auto_authorize
        x.auto_subscribe = False
        x.whitespace_keepalive = False
        fut = self.loop.create_future()

        def settle(kind, message=None):
            if not fut.done():
                fut.set_result((kind, message))

        def encrypted():
            return x.transport is not None and x.transport.get_extra_info("ssl_object") is not None

        async def on_session_start(_):
            try:
                # slixmpp 1.8 logs in over plaintext even with force_starttls=True when the server
                # offers no STARTTLS, so "required" is enforced here.
                if tls == "required" and not encrypted():
                    settle("tls", "server did not offer STARTTLS; the session is not encrypted")
                    return
                if initial_presence:
                    x.send_presence()
                settle("ok")
            except Exception as e:  # reported to the caller, not swallowed
                settle("session", repr(e))

        x.add_event_handler("session_start", on_session_start)
        x.add_event_handler("failed_all_auth", lambda e: settle("auth", "authentication failed (all SASL mechanisms)"))
        x.add_event_handler("no_auth", lambda e: settle("auth", "no usable SASL mechanism offered"))
        x.add_event_handler("ssl_invalid_chain", lambda e: settle("tls", "certificate rejected: %s" % e))
        x.add_event_handler("connection_failed", lambda e: settle("connect", "connection failed: %s" % e))
        x.add_event_handler("stream_error", lambda e: settle("stream", "stream error: %s" % xml_str(e.xml)))
        x.add_event_handler("disconnected", lambda e: settle("disconnected", "disconnected during login: %s" % e))
        self._wire_events(x)
        self.xmpp = x
        if tls == "none":
            x.connect(address=(host, int(port)), force_starttls=False, disable_starttls=True)
        elif tls == "optional":
            x.connect(address=(host, int(port)), force_starttls=None)
        else:
            x.connect(address=(host, int(port)), force_starttls=True)
        try:
            kind, message = await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            kind, message = "timeout", "login did not complete within %ss (untrusted certificate? wrong port?)" % timeout
        if kind != "ok":
            self._drop()
            raise OpError(kind, message)
        return {"jid": str(x.boundjid), "tls": encrypted()}

    def _drop(self):
        x = self.xmpp
        self.xmpp = None
        if x is None:
            return
        x.cancel_connection_attempt()
        x.abort()

    def _wire_events(self, x):
        def on_message(msg):
            ev = msg.xml.find("{%s}event" % NS_PUBSUB_EVENT)
            if ev is not None:
                self._emit_pubsub(msg, ev)
                return
            delay = msg.xml.find("{%s}delay" % NS_DELAY)
            emit({
                "event": "message",
                "from": str(msg["from"]),
                "to": str(msg["to"]),
                "id": msg["id"] or None,
                "type": msg["type"],
                "body": msg["body"] if msg.xml.find("{jabber:client}body") is not None else None,
                "delayed": delay is not None,
                "xml": xml_str(msg.xml),
            })

        def on_presence(pres):
            emit({
                "event": "presence",
                "from": str(pres["from"]),
                "type": pres["type"],
                "show": pres["show"] or None,
                "status": pres["status"] or None,
                "xml": xml_str(pres.xml),
            })

        def on_disconnected(reason):
            emit({"event": "disconnected", "reason": None if reason is None else str(reason)})
            if self.xmpp is x:
                self.xmpp = None

        # slixmpp's "message" event only fires for messages with a <body/>; pubsub notifications
        # have none, so every message stanza goes through one raw handler instead.
        x.register_handler(Callback("operator all messages", MatchXPath("{jabber:client}message"), on_message))
        x.add_event_handler("presence", on_presence)
        x.add_event_handler("disconnected", on_disconnected)
        x.add_event_handler("sm_enabled", lambda e: emit({"event": "sm_enabled"}))
        x.add_event_handler("session_resumed", lambda e: emit({"event": "session_resumed"}))

    def _emit_pubsub(self, msg, ev):
        base = {"from": str(msg["from"]), "xml": xml_str(msg.xml)}
        items = ev.find("{%s}items" % NS_PUBSUB_EVENT)
        if items is not None:
            node = items.get("node")
            for item in items.findall("{%s}item" % NS_PUBSUB_EVENT):
                payload = list(item)
                emit(dict(base, event="pubsub", kind="item", node=node, id=item.get("id"),
                          payload=xml_str(payload[0]) if payload else None))
            for r in items.findall("{%s}retract" % NS_PUBSUB_EVENT):
                emit(dict(base, event="pubsub", kind="retract", node=node, id=r.get("id"), payload=None))
            return
        child = list(ev)
        emit(dict(base, event="pubsub", kind=child[0].tag.split("}")[-1] if child else "unknown",
                  node=child[0].get("node") if child else None, id=None, payload=None))

    def _client(self):
        if self.xmpp is None:
            raise OpError("state", "not connected")
        return self.xmpp

    async def op_disconnect(self, timeout=5):
        x = self.xmpp
        if x is None:
            return {"wasConnected": False}
        self.xmpp = None
        x.cancel_connection_attempt()
        try:
            await asyncio.wait_for(x.disconnect(wait=min(2, timeout)), timeout)
        except asyncio.TimeoutError:
            x.abort()
        return {"wasConnected": True}

    async def op_abort(self):
        """Drops the TCP connection without closing the stream (a crash, as the server sees it)."""
        x = self._client()
        self.xmpp = None
        x.abort()
        return {}

    # ------------------------------------------------------------ stanzas

    async def op_send_message(self, to, body=None, id=None, type="chat", payload=None):
        x = self._client()
        msg = x.make_message(mto=to, mbody=body, mtype=type)
        if id is not None:
            msg["id"] = id
        if payload:
            msg.xml.append(ET.fromstring(payload))
        msg.send()
        return {"id": msg["id"]}

    async def op_send_presence(self, to=None, type=None, show=None, status=None):
        x = self._client()
        x.send_presence(pto=to, ptype=type, pshow=show, pstatus=status)
        return {}

    async def op_roster_subscribe(self, jid):
        self._client().send_presence(pto=jid, ptype="subscribe")
        return {}

    async def op_roster_accept(self, jid, subscribe_back=True):
        x = self._client()
        x.send_presence(pto=jid, ptype="subscribed")
        if subscribe_back:
            x.send_presence(pto=jid, ptype="subscribe")
        return {}

    async def op_get_roster(self, timeout=10):
        x = self._client()
        await x.get_roster(timeout=timeout)
        out = []
        for jid in x.client_roster:
            item = x.client_roster[jid]
            out.append({"jid": str(jid), "subscription": item["subscription"], "name": item["name"] or None})
        return out

    async def op_send_raw(self, xml):
        self._client().send_raw(xml)
        return {}

    async def op_iq(self, to, type, payload, timeout=10):
        """Sends an IQ with one raw XML child; returns the response IQ as XML."""
        iq = self._client().make_iq(ito=to, itype=type)
        iq.xml.append(ET.fromstring(payload))
        resp = await self._send(iq, timeout)
        return {"xml": xml_str(resp.xml)}

    async def _send(self, iq, timeout):
        try:
            return await iq.send(timeout=timeout)
        except IqError as e:
            err = e.iq["error"]
            raise OpError("iq-error", "IQ error %s/%s%s" % (err["type"], err["condition"],
                                                           (": " + err["text"]) if err["text"] else ""),
                          condition=err["condition"], errorType=err["type"], text=err["text"] or None,
                          xml=xml_str(e.iq.xml))
        except IqTimeout:
            raise OpError("iq-timeout", "no IQ response within %ss" % timeout)

    # ------------------------------------------------------------ disco (XEP-0030)

    async def op_disco_info(self, jid, node=None, timeout=10):
        iq = self._client().make_iq_get(ito=jid)
        q = ET.SubElement(iq.xml, "{%s}query" % NS_DISCO_INFO)
        if node:
            q.set("node", node)
        resp = await self._send(iq, timeout)
        q = resp.xml.find("{%s}query" % NS_DISCO_INFO)
        return {
            "identities": [{"category": i.get("category"), "type": i.get("type"), "name": i.get("name")}
                           for i in q.findall("{%s}identity" % NS_DISCO_INFO)],
            "features": [f.get("var") for f in q.findall("{%s}feature" % NS_DISCO_INFO)],
            "forms": [parse_form(f) for f in q.findall("{%s}x" % NS_DATA)],
            "xml": xml_str(resp.xml),
        }

    async def op_disco_items(self, jid, node=None, timeout=10):
        iq = self._client().make_iq_get(ito=jid)
        q = ET.SubElement(iq.xml, "{%s}query" % NS_DISCO_ITEMS)
        if node:
            q.set("node", node)
        resp = await self._send(iq, timeout)
        q = resp.xml.find("{%s}query" % NS_DISCO_ITEMS)
        return {
            "items": [{"jid": i.get("jid"), "node": i.get("node"), "name": i.get("name")}
                      for i in q.findall("{%s}item" % NS_DISCO_ITEMS)],
            "xml": xml_str(resp.xml),
        }

    # ------------------------------------------------------------ ad-hoc commands (XEP-0050)

    async def op_command(self, jid, node, action="execute", sessionid=None, fields=None, timeout=10):
        iq = self._client().make_iq_set(ito=jid)
        cmd = ET.SubElement(iq.xml, "{%s}command" % NS_CMD, node=node)
        if action is not None:
            cmd.set("action", action)
        if sessionid:
            cmd.set("sessionid", sessionid)
        if fields is not None:
            cmd.append(build_form(fields))
        resp = await self._send(iq, timeout)
        c = resp.xml.find("{%s}command" % NS_CMD)
        if c is None:
            raise OpError("protocol", "IQ result without <command/>", xml=xml_str(resp.xml))
        actions_el = c.find("{%s}actions" % NS_CMD)
        return {
            "node": c.get("node"),
            "sessionid": c.get("sessionid"),
            "status": c.get("status"),
            "actions": None if actions_el is None else {
                "execute": actions_el.get("execute"),
                "allowed": [a.tag.split("}")[-1] for a in actions_el],
            },
            "notes": [{"type": n.get("type") or "info", "text": n.text or ""}
                      for n in c.findall("{%s}note" % NS_CMD)],
            "form": parse_form(c.find("{%s}x" % NS_DATA)),
            "xml": xml_str(resp.xml),
        }

    # ------------------------------------------------------------ pubsub (XEP-0060)

    async def op_pubsub_create(self, service, node, config=None, timeout=10):
        iq = self._client().make_iq_set(ito=service)
        ps = ET.SubElement(iq.xml, "{%s}pubsub" % NS_PUBSUB)
        ET.SubElement(ps, "{%s}create" % NS_PUBSUB, node=node)
        if config:
            conf = ET.SubElement(ps, "{%s}configure" % NS_PUBSUB)
            conf.append(build_form(config, form_ns="http://jabber.org/protocol/pubsub#node_config"))
        resp = await self._send(iq, timeout)
        return {"xml": xml_str(resp.xml)}

    async def op_pubsub_delete(self, service, node, timeout=10):
        iq = self._client().make_iq_set(ito=service)
        ps = ET.SubElement(iq.xml, "{%s}pubsub" % NS_PUBSUB_OWNER)
        ET.SubElement(ps, "{%s}delete" % NS_PUBSUB_OWNER, node=node)
        resp = await self._send(iq, timeout)
        return {"xml": xml_str(resp.xml)}

    async def op_pubsub_publish(self, service, node, payload, item_id=None, publish_options=None, timeout=10):
        iq = self._client().make_iq_set(ito=service)
        ps = ET.SubElement(iq.xml, "{%s}pubsub" % NS_PUBSUB)
        pub = ET.SubElement(ps, "{%s}publish" % NS_PUBSUB, node=node)
        item = ET.SubElement(pub, "{%s}item" % NS_PUBSUB)
        if item_id:
            item.set("id", item_id)
        item.append(ET.fromstring(payload))
        if publish_options:
            po = ET.SubElement(ps, "{%s}publish-options" % NS_PUBSUB)
            po.append(build_form(publish_options, form_ns="http://jabber.org/protocol/pubsub#publish-options"))
        resp = await self._send(iq, timeout)
        got = resp.xml.find(".//{%s}item" % NS_PUBSUB)
        return {"id": got.get("id") if got is not None else item_id, "xml": xml_str(resp.xml)}

    async def op_pubsub_subscribe(self, service, node, jid=None, timeout=10):
        x = self._client()
        iq = x.make_iq_set(ito=service)
        ps = ET.SubElement(iq.xml, "{%s}pubsub" % NS_PUBSUB)
        ET.SubElement(ps, "{%s}subscribe" % NS_PUBSUB, node=node, jid=jid or str(x.boundjid.bare))
        resp = await self._send(iq, timeout)
        sub = resp.xml.find(".//{%s}subscription" % NS_PUBSUB)
        return {
            "subscription": None if sub is None else sub.get("subscription"),
            "subid": None if sub is None else sub.get("subid"),
            "xml": xml_str(resp.xml),
        }

    async def op_pubsub_unsubscribe(self, service, node, jid=None, subid=None, timeout=10):
        x = self._client()
        iq = x.make_iq_set(ito=service)
        ps = ET.SubElement(iq.xml, "{%s}pubsub" % NS_PUBSUB)
        el = ET.SubElement(ps, "{%s}unsubscribe" % NS_PUBSUB, node=node, jid=jid or str(x.boundjid.bare))
        if subid:
            el.set("subid", subid)
        resp = await self._send(iq, timeout)
        return {"xml": xml_str(resp.xml)}

    async def op_pubsub_items(self, service, node, max_items=None, timeout=10):
        iq = self._client().make_iq_get(ito=service)
        ps = ET.SubElement(iq.xml, "{%s}pubsub" % NS_PUBSUB)
        items = ET.SubElement(ps, "{%s}items" % NS_PUBSUB, node=node)
        if max_items:
            items.set("max_items", str(max_items))
        resp = await self._send(iq, timeout)
        out = []
        for item in resp.xml.findall(".//{%s}items/{%s}item" % (NS_PUBSUB, NS_PUBSUB)):
            payload = list(item)
            out.append({"id": item.get("id"), "payload": xml_str(payload[0]) if payload else None})
        return {"items": out, "xml": xml_str(resp.xml)}

    async def op_ping(self):
        return {"pong": True}


async def handle(op, req):
    rid = req.get("id")
    name = req.get("op")
    fn = getattr(op, "op_%s" % name, None) if isinstance(name, str) else None
    try:
        if fn is None:
            raise OpError("bad-request", "unknown op %r" % (name,))
        args = req.get("args") or {}
        if not isinstance(args, dict):
            raise OpError("bad-request", "args must be an object")
        result = await fn(**args)
        emit({"id": rid, "ok": True, "result": result})
    except OpError as e:
        emit({"id": rid, "ok": False, "error": dict(e.extra, kind=e.kind, message=str(e))})
    except TypeError as e:
        emit({"id": rid, "ok": False, "error": {"kind": "bad-request", "message": str(e),
                                                "traceback": traceback.format_exc()}})
    except Exception as e:
        emit({"id": rid, "ok": False, "error": {"kind": "exception", "message": "%s: %s" % (type(e).__name__, e),
                                                "traceback": traceback.format_exc()}})


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-seconds", type=float, default=900)
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if os.environ.get("OPERATOR_DEBUG") == "1" else logging.WARNING,
                        stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    loop = asyncio.get_event_loop()

    def expire():
        emit({"event": "fatal", "message": "operator exceeded --max-seconds=%s" % args.max_seconds})
        os._exit(3)

    loop.call_later(args.max_seconds, expire)
    op = Operator()
    reader = asyncio.StreamReader(limit=16 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    emit({"event": "ready", "pid": os.getpid()})
    tasks = set()
    while True:
        line = await reader.readline()
        if not line:
            break
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
            if not isinstance(req, dict):
                raise ValueError("request must be a JSON object")
        except ValueError as e:
            emit({"id": None, "ok": False, "error": {"kind": "bad-request", "message": "bad JSON line: %s" % e}})
            continue
        t = asyncio.ensure_future(handle(op, req))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
    # stdin closed: the harness is done with us (or died). Leave quickly and cleanly.
    if op.xmpp is not None:
        try:
            await asyncio.wait_for(op.op_disconnect(timeout=1), 2)
        except Exception:
            pass  # exiting anyway; the server notices the closed socket
    os._exit(0)


if __name__ == "__main__":
    asyncio.get_event_loop().run_until_complete(main())
