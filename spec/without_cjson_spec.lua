-- The module without lua-cjson: `require "truto"` and every module of this
-- tree load, and the JSON they read and write works, in a fresh interpreter
-- where `require "cjson"` fails; where lua-cjson is installed, truto.null is
-- cjson.null. On every Lua the suite runs on (h.LUA).
local h = require "spec.support.helpers"
local sh = require "spec.support.sh"

local _, root = sh.run("cd " .. sh.quote((debug.getinfo(1, "S").source:gsub("^@", ""):gsub("[^/]*$", "")))
  .. "/.. && pwd -P")
local ROOT = root:gsub("\n$", "")

-- Lua code that makes every require of lua-cjson fail, as where it is not
-- installed, and records that it was asked for.
local HIDE_CJSON = [[
  local asked = {}
  for _, name in ipairs { "cjson", "cjson.safe" } do
    package.preload[name] = function()
      asked[#asked + 1] = name
      error("module '" .. name .. "' not found (hidden by the spec)")
    end
  end
  function cjson_asked() return table.concat(asked, ",") end
]]

-- This tree's Lua modules, as names for require.
local function module_names()
  local ok, out = sh.run("cd " .. sh.quote(ROOT .. "/lua") .. " && find truto truto.lua -name '*.lua' | sort")
  assert(ok, out)
  local names = {}
  for path in out:gmatch("[^\n]+") do
    names[#names + 1] = path:gsub("%.lua$", ""):gsub("/", ".")
  end
  return names
end

-- Runs `code` (a chunk that returns a value) with lua-cjson hidden; returns
-- "<the cjson modules it asked for>|<what it returned>".
local function outcome(code)
  local out, ok = h.run_lua(HIDE_CJSON .. "local result = (function()\n" .. code .. "\nend)()\n"
    .. 'io.write(cjson_asked(), "|", tostring(result))', {
    LUA_PATH = ROOT .. "/lua/?.lua;" .. ROOT .. "/?.lua;;",
    LUA_CPATH = os.getenv("LUA_CPATH") or (ROOT .. "/build/" .. h.LUA .. "/?.so;;"),
  })
  assert.is_true(ok, out)
  return out
end

describe("without lua-cjson", function()
  it("the spec's interpreter really cannot load it", function()
    assert.equal("cjson,cjson.safe|true", outcome [[
      return not pcall(require, "cjson") and not pcall(require, "cjson.safe")
    ]])
  end)

  it("require \"truto\" works and makes a client, and truto.null is JSON null", function()
    assert.equal("|function", outcome [[
      local truto = require "truto"
      local core = require "truto.core"
      assert(truto.null == core.null and truto.null ~= nil)
      local c = assert(truto.new { token = "t", base_url = "http://127.0.0.1:9",
        integrated_account_id = "62f44730-dd91-461e-bd6a-aedd9e0ad79d" })
      local text = '{"a":[],"n":9007199254740992}'
      assert(truto.json_encode(truto.json_decode(text, { mark_arrays = true })) == text)
      assert(core.json_decode("[null]")[1] == truto.null)
      return type(c.groups.create)
    ]])
  end)

  it("every module of this tree loads without asking for it", function()
    local names = module_names()
    assert.truthy(#names > 20)
    assert.equal("|", outcome("local NAMES = " .. ("%q"):format(table.concat(names, " ")) .. [[

      local failed = {}
      for name in NAMES:gmatch("%S+") do
        local loaded, err = pcall(require, name)
        -- a host's transport needs its host (ngx, HAProxy's core); lua-cjson it must not
        if not loaded and tostring(err):find("cjson") then failed[#failed + 1] = name .. ": " .. tostring(err) end
      end
      return table.concat(failed, "; ")
    ]]))
  end)

  it("verifies and decodes a webhook, and reads and writes the CLI's JSON", function()
    assert.equal("|ok", outcome [[
      local truto = require "truto"
      local json = require "truto.cli.json"
      local results = require "truto.cli.results"
      local body = '{"id":"e1","event":"x","created_at":"2026-12-01T22:15:58Z","payload":{"n":12345678901234567890}}'
      local event = assert(truto.webhooks.verify("s", truto.webhooks.sign("s", body), body, { now = 1796163358 }))
      assert(event.payload.n == "12345678901234567890")
      local row = assert(json.decode('{"name":"a","tags":[]}'))
      assert(json.encode(row) == '{"name":"a","tags":[]}')
      if math.type then -- the command itself runs on 5.3+ (math.type)
        local path = os.tmpname()
        local w = assert(results.open(path))
        w:write { row = 1, result = "created", id = "g1" }
        w:close()
        local lines = assert(results.read(path))
        os.remove(path)
        assert(#lines == 1 and lines[1].row == 1 and lines[1].id == "g1")
      end
      return "ok"
    ]])
  end)
end)

describe("with lua-cjson", function()
  it("truto.null is cjson.null, so either encoder and decoder reads the other's null", function()
    local cjson = require "cjson"
    local truto = require "truto"
    assert.equal(cjson.null, truto.null)
    assert.equal(require("cjson.safe").null, truto.null)
    assert.equal("[null]", cjson.encode({ truto.null }))
    assert.equal(truto.null, require("truto.core").json_decode("[null]")[1])
  end)
end)
