-- spec.support.pace_haproxy_service: a service spec/pace_redis_spec.lua adds
-- to examples/haproxy/haproxy.cfg: spec_rate_store makes a client on the
-- Redis store named by the body and answers which store its reservations
-- went to and why. Never decides what is right: the spec does.
local truto = require "truto"

core.register_service("spec_rate_store", "http", function(applet)
  local url = applet:receive()
  local c = assert(truto.new{ token = "fleet-spec-token-9f1c", base_url = "http://127.0.0.1:9",
    rate_limit_store = url,
    rate_limits = { token = { limit = 10, window = 60 }, account = { limit = 4, window = 60 } } })
  local went, store = 0, nil
  for _ = 1, 4 do
    local w
    w, store = c.pace:reserve("acc-1", 100.0)
    if w == 0 then went = went + 1 end
  end
  local _, why = c.pace:status()
  local text = went .. " " .. store .. " " .. tostring(why) .. "\n"
  applet:set_status(200)
  applet:add_header("content-length", tostring(#text))
  applet:start_response()
  applet:send(text)
end)
