-- Lets Debian 12's prosody-modules SASL2 family (the 2023-02-23 snapshot: mod_sasl2,
-- mod_sasl2_bind2, mod_sasl2_fast) run on Prosody 0.12. Two things they expect from 0.13 are
-- missing in 0.12, and each kills every encrypted c2s stream before the client sees a feature:
--
-- 1. mod_sasl2 calls conn:ssl_info() ("attempt to call a nil value (method 'ssl_info')"): each
--    c2s connection gets that method here, answered from LuaSec's own socket:info().
-- 2. mod_sasl2_fast reads the client's stream header from the stream-features event
--    ("attempt to index a nil value (field 'stream')"), to know whose tokens to offer; 0.12's
--    mod_c2s does not pass it. The header's `from` is recorded here when the stream is opened
--    (through the session's stream_attrs callback, which 0.12 calls with it) and handed on.
--    Set up on the first features of a connection, so it sees every later header: with STARTTLS
--    that includes the encrypted one where FAST is offered; on Direct TLS it does not, and FAST
--    is then not offered.
--
-- 3. mod_sasl2_fast formats a token's expiry from a fractional time; 0.12's util.datetime hands
--    that to os.date, which on Lua 5.4 refuses it ("number has no integer representation") and
--    kills the stream right after a successful login. Times are floored to the second here, which
--    is all the format shows anyway.
--
-- 4. mod_sasl2_fast reads the client id with stanza:get_child_attr(), a 0.13 method: a login with
--    a FAST token dies on it. It is added here, doing what its name says.
--
-- Nothing here changes a Prosody that already has all four. Not covered: mod_sasl2_sm needs
-- mod_smacks' do_resume/do_enable, which 0.12 lacks; without it SASL2 clients enable and resume
-- XEP-0198 the classic way after authenticating (docs/servers.md, "SASL2, Bind2 and FAST").

local datetime = require "util.datetime";
if not datetime.iot_floored then
	datetime.iot_floored = true;
	for _, name in ipairs({ "datetime", "date", "time" }) do
		local format = datetime[name];
		if format then
			datetime[name] = function (t, ...)
				if type(t) == "number" then t = math.floor(t); end
				return format(t, ...);
			end;
		end
	end
end

local stanza_mt = require "util.stanza".stanza_mt;
if stanza_mt.get_child_attr == nil then
	function stanza_mt:get_child_attr(name, xmlns, attr)
		local child = self:get_child(name, xmlns);
		if child then
			return child.attr[attr];
		end
	end
end

module:hook("stream-features", function (event)
	local session = event.origin;
	local conn = session.conn;
	if conn ~= nil and conn.ssl_info == nil then
		conn.ssl_info = function (self)
			local sock = self:socket();
			if sock and sock.info then
				return sock:info();
			end
		end;
	end
	if event.stream == nil then
		if not session.iot_stream_attrs_hooked then
			session.iot_stream_attrs_hooked = true;
			local previous = session.stream_attrs;
			session.stream_attrs = function (s, from, to, attr)
				s.iot_stream_from = to;
				if previous then
					return previous(s, from, to, attr);
				end
			end;
		end
		event.stream = { from = session.iot_stream_from, to = session.host };
	end
end, 100);
