-- The keys that make retries safe: random version-4 UUIDs, never repeated,
-- not even by a process forked after the module was used (nginx workers).
local core = require "truto.core"
local h = require "spec.support.helpers"

describe("core.uuid4", function()
  it("gives version 4 UUIDs", function()
    for _ = 1, 100 do
      assert.matches("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$", core.uuid4())
    end
  end)

  it("never repeats across many keys (several refills of its pool)", function()
    local seen = {}
    for _ = 1, 20000 do
      local k = core.uuid4()
      assert.is_nil(seen[k])
      seen[k] = true
    end
  end)

  it("gives a forked child different keys from its parent", function()
    if h.LUA ~= "lua5.4" then return end -- the check program embeds Lua 5.4
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local ok = os.execute("cc -o " .. dir .. "/forkcheck spec/support/forkcheck.c -I/usr/include/lua5.4 -llua5.4")
    assert.is_truthy(ok)
    local p = io.popen(dir .. "/forkcheck build/lua5.4/?.so")
    local a, b = p:read("*l"), p:read("*l")
    p:close()
    os.execute("rm -rf " .. dir)
    assert.matches("^%x+%-", a)
    assert.matches("^%x+%-", b)
    assert.are_not.equal(a, b)
  end)
end)
