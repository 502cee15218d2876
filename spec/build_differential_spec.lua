-- The request builder against a recorded corpus (spec/fixtures/build_cases.lua,
-- made by scripts/gen-build-cases with the builder that read the plan from
-- Lua tables): for random bodies, queries, accounts and ids on every kind of
-- operation, the same target and JSON byte for byte, or the same field and
-- message. Any change to what is built or refused fails here first.
local core = require "truto.core"
local call = require "truto.call"
local api = require "truto.api"

local function fixture_path()
  local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec"
  return here .. "/fixtures/build_cases.lua"
end

local function load_cases()
  local f = assert(io.open(fixture_path(), "rb"))
  local text = f:read("*a")
  f:close()
  local chunk = assert((loadstring or load)(text, "=build_cases"))
  local array_mt = getmetatable(core.array({}))
  return chunk()(core.null,
    function(t) return setmetatable(t, array_mt) end,
    print, io.stdout,
    function(t) return setmetatable(t, {}) end,
    function() local t = { a = 1 } t.self = t return t end,
    { inf = math.huge, ninf = -math.huge, nan = math.huge - math.huge, nzero = -1 / math.huge })
end

local function compiled_ops()
  local g, x = api.resources.groups.operations, api.generic("crm", "contacts").operations
  local ops = {}
  for _, n in ipairs{ "create", "update", "list", "get", "delete", "remove_user" } do
    ops["groups." .. n] = call.compile(g[n])
  end
  for _, n in ipairs{ "create", "update", "list", "get", "delete" } do ops["generic." .. n] = call.compile(x[n]) end
  ops["custom.call"] = call.compile(api.custom("crm", "contacts", "merge"))
  return ops
end

describe("the request builder", function()
  local cases, ops = load_cases(), compiled_ops()
  local has_integers = math.type ~= nil

  it("builds the recorded corpus byte for byte, and refuses it with the same field and message", function()
    assert.is_true(#cases >= 300)
    local built, refused = 0, 0
    for i, c in ipairs(cases) do
      local want = (not has_integers and c.want_noint) or c.want
      local a, b, m = ops[c.op].build(c.body, c.query, c.account, c.id)
      local where = ("case %d (%s)"):format(i, c.op)
      if want.ok then
        assert.equal(want.target, a, where .. ": target; refused with " .. tostring(m))
        assert.equal(want.json, b, where .. ": json")
        built = built + 1
      else
        assert.is_nil(a, where .. ": built " .. tostring(a) .. " " .. tostring(b))
        assert.equal(want.field, b, where .. ": field")
        assert.equal(want.message, m, where .. ": message")
        refused = refused + 1
      end
    end
    assert.is_true(built > 100 and refused > 100)
  end)

  it("gives the same answers when each case is built twice in a row (no state leaks between builds)", function()
    for i, c in ipairs(cases) do
      local build = ops[c.op].build
      local a1, b1, m1 = build(c.body, c.query, c.account, c.id)
      local a2, b2, m2 = build(c.body, c.query, c.account, c.id)
      assert.equal(a1, a2, "case " .. i)
      assert.equal(b1, b2, "case " .. i)
      assert.equal(m1, m2, "case " .. i)
    end
  end)
end)
