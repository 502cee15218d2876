-- Inputs the fuzzers once broke the core with (fuzz/regressions/), replayed
-- the way each target feeds them, so `make test` and `make check` (under
-- ASan+UBSan) keep them fixed.
local core = require "truto.core"

local function files(dir)
  local out = {}
  local p = io.popen("ls " .. dir .. " 2>/dev/null")
  for name in p:lines() do out[#out + 1] = dir .. "/" .. name end
  p:close()
  return out
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

describe("fuzz regressions", function()
  it("the response parser takes every kept input, piece by piece, without raising", function()
    local inputs = files("fuzz/regressions/fuzz_http")
    assert.is_true(#inputs >= 1)
    for _, path in ipairs(inputs) do
      local data = read(path)
      local parser = core.http_response(data:byte(1) % 2 == 1)
      local bytes, at = data:sub(2), 1
      while true do
        local piece = at <= #bytes and 1 + bytes:byte(at) % 64 or 0
        local chunk = bytes:sub(at, at + piece - 1)
        local phase, message = parser:feed(chunk)
        assert.is_true(phase ~= nil or type(message) == "string", path)
        parser:status(); parser:content_length(); parser:headers(); parser:take(); parser:keep_alive()
        if chunk == "" then break end
        at = at + #chunk
      end
    end
  end)
end)
