-- Test-only server policy: refuses publishes whose item id matches iot_test_refuse_item (a Lua
-- pattern) with <policy-violation/>, the way a server-side ACL or content policy refuses one batch
-- for good. Loaded on the pubsub component by test/telemetry/dead-letter-prosody.test.ts.
local st = require "util.stanza";
local pattern = module:get_option_string("iot_test_refuse_item");
module:log("info", "refusing pubsub items matching %s", tostring(pattern));

local function refuse(event)
	local stanza = event.stanza;
	if stanza.attr.type ~= "set" then return; end
	local pubsub = stanza.tags[1];
	local publish = pubsub and pubsub:get_child("publish");
	local item = publish and publish:get_child("item");
	if pattern and item and item.attr.id and item.attr.id:match(pattern) then
		module:log("info", "refusing item %s by test policy", item.attr.id);
		event.origin.send(st.error_reply(stanza, "modify", "policy-violation", "refused by the test policy"));
		return true;
	end
end

-- Before mod_pubsub, whichever event name the router fires on this Prosody.
module:hook("iq-set/host/http://jabber.org/protocol/pubsub:pubsub", refuse, 1000);
module:hook("iq/host/http://jabber.org/protocol/pubsub:pubsub", refuse, 1000);
