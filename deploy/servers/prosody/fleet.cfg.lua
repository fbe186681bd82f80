-- Prosody 0.12: what a fleet of xmpp-iot-agent devices needs from the server.
--
-- Install: copy this file to /etc/prosody/conf.d/ (Debian's prosody.cfg.lua ends with
-- `Include "conf.d/*.cfg.lua"`), or add `Include "/etc/prosody/fleet.cfg.lua"` to your
-- prosody.cfg.lua. Prosody reads an included file in the global scope wherever the Include line
-- is, and a later assignment of the same option wins: put the Include after your own global
-- settings. Details and the reasons behind each value: docs/servers.md, "Prosody 0.12".
--
-- An included file cannot add to modules_enabled (it would replace the whole list). These
-- settings need "smacks" and "limits" in your modules_enabled; Debian's prosody.cfg.lua has both.
--
-- Every option below exists in Prosody 0.12.3 (read from /usr/lib/prosody/modules/*.lua and
-- net/server_epoll.lua); test/interop/prosody-sql.test.ts checks the ones observable from a client.

---------------------------------------------------------------------------- stream management
-- (mod_smacks, XEP-0198)

-- A device whose link drops keeps its session this long, so it resumes without a new bind and
-- nothing sent to it is lost. Prosody 0.12 grants this to every client, whatever `max` it asks for
-- (the agent asks for 600: xmpp.streamManagement.resumeMaxSeconds).
smacks_hibernation_time = 600

-- Stanzas kept per session until the device acknowledges them: bounds what one hibernating device
-- holds in server memory (default 500). A device receives little (commands, IQ results); past this
-- the session cannot be resumed and the device binds a new one.
smacks_max_queue_size = 250

-- Prosody asks for an acknowledgement (<r/>) once more than this many stanzas are unacknowledged,
-- instead of after every write (default 0): one round trip per 10 stanzas, not one per publish.
smacks_max_unacked_stanzas = 10

---------------------------------------------------------------------------- pubsub (XEP-0060)

-- Most items one node may be configured to keep ("max" means this); a node asking for more is
-- refused (bad-request). Bounds the stored items per device node; the agent asks for 32
-- (telemetry.publish.maxItems). 256 is also Prosody's default: stated here so the bound is visible.
pubsub_max_items = 256

-- The same bound for PEP nodes, for agents that publish to their own account (no pubsub.service).
pep_max_items = 256

-- Prosody 0.12 has no option limiting how many nodes an account may create. On the pubsub
-- component only its admins create nodes (docs/protocol.md, "Who owns the nodes"), which is the
-- bound there; PEP nodes per account are unlimited.

---------------------------------------------------------------------------- client connections

-- Bytes per second Prosody reads from one client connection (mod_limits; its default is 10 KiB/s).
-- Steady telemetry is far less (a 50-reading batch, about 7 KB, every 5 s is 1.4 KB/s), so this
-- only slows a runaway or hijacked device, while a device draining its spool after an outage is
-- not held back for hours. On the default network backend (epoll) 0.12 has no burst allowance, so
-- no `burst` is set.
limits = {
	c2s = { rate = "50kb/s" };
}

-- Accounts read at full speed (mod_limits): your operators and fleet admins, who fetch history
-- and provision in bulk. Replace with your own accounts, or leave empty.
unlimited_jids = { }

-- Largest stanza an authenticated client may send (default 256 KiB): bounds what Prosody buffers
-- per connection. A publish of the agent's default batch (50 readings) is about 7 KB; a larger
-- stanza closes the sender's stream (policy-violation).
c2s_stanza_size_limit = 65536

-- A connection that has not authenticated within this many seconds is closed (default 300): frees
-- sockets held by half-open or stalled logins. Leaves room for TLS and SASL in a reconnect storm.
c2s_timeout = 120

---------------------------------------------------------------------------- TCP
-- (net.server_epoll, the default network backend of 0.12)
network_settings = {
	-- TCP_NODELAY on every connection Prosody accepts or opens: small stanzas (acks, command
	-- answers, readings) leave at once instead of waiting for the peer's ACK (Nagle's algorithm).
	-- Prosody's default is nagle = true, i.e. Nagle stays on.
	nagle = false;
	-- Pending connections the kernel queues for each listener (default 128): a server restart
	-- brings every device back at once. Capped by net.core.somaxconn (4096 on Linux >= 5.4).
	tcp_backlog = 1024;
	-- Seconds of silence after which Prosody probes a client (default 840): with stream management
	-- it sends <r/>, and a client still silent one period later is dropped and its session
	-- hibernates for resumption. The agent talks at least every 60 s (xmpp.keepalive.idleMs), so
	-- only a dead link is silent this long: it is noticed within 6 minutes instead of 28.
	read_timeout = 180;
}
