-- spec.support.haproxy_services: services the HAProxy specs (spec/haproxy*_spec.lua) add to
-- examples/haproxy/haproxy.cfg (lua-load, the same shared Lua state as the
-- example's module):
--   spec_ping    answers "pong" from Lua: it needs the shared Lua state, so
--                it is slow whenever a create holds that state
--   spec_create  runs one create described by the JSON body with
--                spec.support.openresty_driver and answers its description
--                (handler_seconds: how long the create took inside HAProxy)
-- Returns { answer = function(applet, text) } (a 200 with that body) for
-- other spec services. Never decides what is right: the spec does.
local cjson = require "cjson"
local driver = require "spec.support.openresty_driver"

local function answer(applet, text)
  applet:set_status(200)
  applet:add_header("content-length", tostring(#text))
  applet:start_response()
  applet:send(text)
end

core.register_service("spec_ping", "http", function(applet)
  answer(applet, "pong\n")
end)

core.register_service("spec_create", "http", function(applet)
  local input = cjson.decode(applet:receive())
  local t = core.now()
  local result = driver.describe(input)
  local u = core.now()
  result.handler_seconds = (u.sec - t.sec) + (u.usec - t.usec) / 1e6
  answer(applet, cjson.encode(result))
end)

return { answer = answer }
