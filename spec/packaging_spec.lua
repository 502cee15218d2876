-- Packaging: the rockspec installs every Lua module and builds every C
-- source of this tree, so `luarocks make` and `make install` agree; it
-- declares what the module needs at run time, and everything it installs
-- loads on the Lua it is installed for.
local h = require "spec.support.helpers"
local sh = require "spec.support.sh"

local ROCKSPEC = "rockspec/truto-0.1.0-1.rockspec"
local IS_LUAJIT = rawget(_G, "jit") ~= nil
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

  it("depends on no lua-cjson: the module's JSON is the core's own", function()
    for _, dep in ipairs(spec.dependencies) do
      assert.is_nil(dep:match("cjson"), dep)
    end
  end)

  it("names the public repository and the release tag as its source", function()
    assert.equal("git+https://github.com/truto-lua/truto-lua.git", spec.source.url)
    assert.equal("v0.1.0", spec.source.tag)
    assert.equal(spec.version:match("^([^-]+)"), spec.source.tag:sub(2))
  end)

  it("passes luarocks lint", function()
    local ok, out = sh.run("luarocks lint " .. ROCKSPEC)
    assert.is_true(ok, out)
  end)

  it("installs only modules that load on this Lua (" .. (IS_LUAJIT and "LuaJIT" or _VERSION) .. ")", function()
    local names = {}
    for name, path in pairs(spec.build.modules) do
      if type(path) == "string" then names[#names + 1] = name end
    end
    table.sort(names)
    local out = h.run_lua([[
      local failed = {}
      for name in ("]] .. table.concat(names, " ") .. [["):gmatch("%S+") do
        local ok, why = pcall(require, name)
        if not ok then failed[#failed + 1] = name .. ": " .. tostring(why) end
      end
      io.write(#failed == 0 and "all loaded" or table.concat(failed, "\n"))]])
    assert.equal("all loaded", out)
  end)

  it("installs a command that says which Lua it needs instead of failing half-way", function()
    -- sh.run, not h.run_lua: Lua 5.1's pipe:close() does not give the exit status
    local ok, out = sh.run(h.LUA .. " bin/truto-groups --help")
    if _VERSION == "Lua 5.4" and not IS_LUAJIT then
      assert.is_true(ok, out)
      assert.matches("import", out)
    else
      assert.is_false(ok)
      assert.matches("truto%-groups: needs Lua 5%.4 %(this is Lua 5%.%d%)", out)
    end
  end)
end)

describe("luarocks make", function()
  -- PUC Lua only: a LuaJIT user builds with OpenResty's own luarocks; and
  -- not under make check's instrumented stand-in for the interpreter
  -- (ASAN_OPTIONS set), which luarocks cannot find Lua's headers beside
  local it_puc = (IS_LUAJIT or os.getenv("ASAN_OPTIONS")) and pending or it
  it_puc("builds and installs a tree whose modules load, without lua-cjson from LuaRocks", function()
    local abi = _VERSION:match("%d+%.%d+")
    local ok, dir = sh.run("mktemp -d")
    assert.is_true(ok, dir)
    dir = dir:match("^%s*(.-)%s*$")
    finally(function() sh.run("rm -rf " .. sh.quote(dir)) end)
    -- a copy, so the build's objects never land in this tree
    local out
    ok, out = sh.run("cp -r rockspec csrc lua bin " .. sh.quote(dir) .. " && cd " .. sh.quote(dir)
      .. " && luarocks --lua-version=" .. abi .. " make --deps-mode=none --tree=tree " .. ROCKSPEC)
    assert.is_true(ok, out)
    local tree = dir .. "/tree"
    local loaded = h.run_lua([[
      local truto = require "truto"
      for _, m in ipairs{ "truto.cli.args", "truto.cli.json", "truto.cli.results", "truto.cli.progress",
        "truto.cli.commands", "truto.cli.sync", "truto.url", "truto.response", "truto.pace",
        "truto.webhooks" } do require(m) end
      local c = assert(truto.new{ token = "tok-12345", base_url = "HTTP://Example.com/" })
      io.write(c.base_url)]],
      -- ";;" adds Lua's default paths (lua-cjson's), never this tree's build/
      { LUA_PATH = tree .. "/share/lua/" .. abi .. "/?.lua;;",
        LUA_CPATH = tree .. "/lib/lua/" .. abi .. "/?.so;;" })
    assert.equal("http://example.com", loaded)
    assert.is_string(sh.read_file(tree .. "/lib/lua/" .. abi .. "/truto/core.so"))
    assert.is_string(sh.read_file(tree .. "/share/lua/" .. abi .. "/truto/cli/json.lua"))
  end)
end)
