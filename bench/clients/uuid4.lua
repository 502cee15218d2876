-- bench/clients/uuid4.lua: the Idempotency-Key each hand-written peer
-- client (lcurl.lua, lcurl_multi.lua, luasec.lua, luasocket.lua,
-- curl_per_call.lua) sends with a create: a random (version 4) UUID from
-- math.random, as a user of those libraries would write it. One copy, so
-- every peer makes its keys the same way.
--   local uuid4 = dofile("bench/clients/uuid4.lua")  -- from the repository root
math.randomseed(os.time())

return function()
  local r = math.random
  return ("%08x-%04x-4%03x-%04x-%04x%08x"):format(r(0, 0xffffffff), r(0, 0xffff), r(0, 0xfff),
    0x8000 | r(0, 0x3fff), r(0, 0xffff), r(0, 0xffffffff))
end
