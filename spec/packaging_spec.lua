-- Packaging: the rockspec installs every Lua module and builds every C
-- source of this tree, so `luarocks make` and `make install` agree.
local function lines(cmd)
  local p = assert(io.popen(cmd))
  local out = {}
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  table.sort(out)
  return out
end

describe("rockspec/truto-0.1.0-1.rockspec", function()
  local spec = {}
  setup(function()
    local chunk = assert(loadfile("rockspec/truto-0.1.0-1.rockspec", "t", spec))
    if setfenv then setfenv(chunk, spec) end
    chunk()
  end)

  it("lists every Lua module under lua/", function()
    local listed = {}
    for name, path in pairs(spec.build.modules) do
      if type(path) == "string" then
        assert.equal("lua/" .. name:gsub("%.", "/") .. ".lua", path)
        listed[#listed + 1] = path
      end
    end
    table.sort(listed)
    assert.same(lines("find lua -name '*.lua'"), listed)
  end)

  it("builds the C core from every file in csrc/", function()
    local sources = {}
    for _, s in ipairs(spec.build.modules["truto.core"].sources) do sources[#sources + 1] = s end
    table.sort(sources)
    assert.same(lines("ls csrc/*.c"), sources)
  end)

  it("installs the command-line tool", function()
    assert.equal("bin/truto-groups", spec.build.install.bin["truto-groups"])
  end)
end)
