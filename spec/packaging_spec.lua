-- Packaging: the rocks as a user meets them. truto (the library, every
-- Lua) and truto-groups (the command-line tool, Lua 5.4 only) install
-- every Lua module and build every C source of this tree, so `luarocks
-- make` and `make install` agree; the scm rockspecs build the checkout;
-- core.so links every library it calls; everything installed loads, and
-- the command runs, on the Lua it is installed for.
local h = require "spec.support.helpers"
local sh = require "spec.support.sh"

local RELEASE, SCM = "rockspec/truto-0.1.0-1.rockspec", "rockspec/truto-scm-0.rockspec"
local CLI_RELEASE, CLI_SCM = "rockspec/truto-groups-0.1.0-1.rockspec", "rockspec/truto-groups-scm-0.rockspec"
local IS_LUAJIT = rawget(_G, "jit") ~= nil
local function lines(cmd)
  local p = assert(io.popen(cmd))
  local out = {}
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  table.sort(out)
  return out
end

local function load_rockspec(path)
  local spec = {}
  local chunk = assert(loadfile(path, "t", spec))
  if setfenv then setfenv(chunk, spec) end
  chunk()
  return spec
end

-- What the shared object at `so` exports besides luaopen_* (sorted), and
-- whether it exports luaopen_truto_core. A Lua C module must export nothing
-- else: a host exporting the same name (Neovim exports strbuf_*, as csrc/
-- has) would have the core's calls bound to its function instead.
local function other_exports(so)
  local ok, out = sh.run("nm -D --defined-only " .. sh.quote(so))
  assert.is_true(ok, out)
  local others, opens = {}, false
  for line in out:gmatch("[^\n]+") do
    local name = assert(line:match("^%x+ %a (%S+)$"), line)
    if name == "luaopen_truto_core" then
      opens = true
    elseif not name:match("^luaopen_") then
      others[#others + 1] = name
    end
  end
  table.sort(others)
  return others, opens
end

-- The Lua modules a rockspec installs, sorted by path (each named after it).
local function lua_modules(spec)
  local listed = {}
  for name, path in pairs(spec.build.modules) do
    if type(path) == "string" then
      assert.equal("lua/" .. name:gsub("%.", "/") .. ".lua", path)
      listed[#listed + 1] = path
    end
  end
  table.sort(listed)
  return listed
end

describe("the rockspecs", function()
  local lib, scm, cli, cli_scm
  setup(function()
    lib, scm = load_rockspec(RELEASE), load_rockspec(SCM)
    cli, cli_scm = load_rockspec(CLI_RELEASE), load_rockspec(CLI_SCM)
  end)

  it("pass luarocks lint", function()
    for _, path in ipairs{ RELEASE, SCM, CLI_RELEASE, CLI_SCM } do
      local ok, out = sh.run("luarocks lint " .. path)
      assert.is_true(ok, path .. ": " .. out)
    end
  end)

  it("list every Lua module under lua/: the library in truto, truto.cli.* in truto-groups", function()
    local all = {}
    for _, path in ipairs(lua_modules(lib)) do
      assert.is_nil(path:match("^lua/truto/cli/"), path)
      all[#all + 1] = path
    end
    for _, path in ipairs(lua_modules(cli)) do
      assert.matches("^lua/truto/cli/", path)
      all[#all + 1] = path
    end
    table.sort(all)
    assert.same(lines("find lua -name '*.lua'"), all)
  end)

  it("build the same from the checkout (scm) as the release does", function()
    assert.same(lib.build, scm.build)
    assert.same(lib.dependencies, scm.dependencies)
    assert.same(cli.build, cli_scm.build)
    assert.equal("scm-0", scm.version)
    assert.equal("scm-0", cli_scm.version)
    assert.same({ "lua >= 5.4, < 5.5", "truto = scm" }, cli_scm.dependencies)
    assert.same({ "lua >= 5.4, < 5.5", "truto = 0.1.0" }, cli.dependencies)
  end)

  it("build the C core from every file in csrc/", function()
    local sources = {}
    for _, s in ipairs(lib.build.modules["truto.core"].sources) do sources[#sources + 1] = s end
    table.sort(sources)
    assert.same(lines("ls csrc/*.c"), sources)
  end)

  it("link every library the C core needs: libcurl, libssl, libcrypto, hiredis and libm", function()
    assert.same({ "curl", "ssl", "crypto", "hiredis", "m" }, lib.build.modules["truto.core"].libraries)
  end)

  it("install the command-line tool only with truto-groups, which needs Lua 5.4", function()
    assert.is_nil(lib.build.install)
    assert.equal("bin/truto-groups", cli.build.install.bin["truto-groups"])
    assert.equal("lua >= 5.4, < 5.5", cli.dependencies[1])
  end)

  it("depend on no lua-cjson: the module's JSON is the core's own", function()
    for _, spec in ipairs{ lib, cli } do
      for _, dep in ipairs(spec.dependencies) do
        assert.is_nil(dep:match("cjson"), dep)
      end
    end
  end)

  it("name the public repository and the release tag, and say plainly it is not published yet", function()
    for _, path in ipairs{ RELEASE, CLI_RELEASE } do
      local spec = load_rockspec(path)
      assert.equal("git+https://github.com/truto-lua/truto-lua.git", spec.source.url)
      assert.equal("v0.1.0", spec.source.tag)
      assert.equal(spec.version:match("^([^-]+)"), spec.source.tag:sub(2))
      local text = sh.read_file(path)
      assert.matches("NOT PUBLISHED YET", text, 1, true)
      assert.matches("luarocks make", text, 1, true)
    end
  end)
  it("install only modules that load on this Lua (" .. (IS_LUAJIT and "LuaJIT" or _VERSION) .. ")", function()
    local names = {}
    for _, spec in ipairs{ lib, cli } do
      for name, path in pairs(spec.build.modules) do
        if type(path) == "string" then names[#names + 1] = name end
      end
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

describe("core.so", function()
  local abi = _VERSION:match("%d+%.%d+")
  local dir
  setup(function()
    local ok
    ok, dir = sh.run("mktemp -d")
    assert.is_true(ok, dir)
    dir = dir:match("^%s*(.-)%s*$")
  end)
  teardown(function()
    if dir and dir:match("^/tmp/") then sh.run("rm -rf " .. sh.quote(dir)) end
  end)

  local function luarocks_variable(name)
    local ok, value = sh.run("luarocks config variables." .. name)
    assert.is_true(ok, value)
    return value:match("^%s*(.-)%s*$")
  end

  -- On every Lua, LuaJIT and make check included: the rockspec gives no
  -- compiler flags (the builtin backend takes none), so the headers alone
  -- must hide the core's names.
  it("exports only luaopen_truto_core when built as LuaRocks' builtin backend builds it (no -fvisibility)",
    function()
    local core = load_rockspec(SCM).build.modules["truto.core"]
    local so = dir .. "/core.so"
    -- CC, CFLAGS and LIBFLAG as luarocks uses them (e.g. "gcc", "-O2 -fPIC",
    -- "-shared"); the incdirs/libdirs of external dependencies are the
    -- system's own here
    local cmd = { luarocks_variable "CC", luarocks_variable "CFLAGS", luarocks_variable "LIBFLAG",
      "-I" .. (IS_LUAJIT and "/usr/include/luajit-2.1" or "/usr/include/lua" .. abi) }
    for _, define in ipairs(core.defines) do cmd[#cmd + 1] = "-D" .. define end
    for _, source in ipairs(core.sources) do cmd[#cmd + 1] = source end
    cmd[#cmd + 1] = "-o " .. sh.quote(so)
    for _, library in ipairs(core.libraries) do cmd[#cmd + 1] = "-l" .. library end
    local ok, out = sh.run(table.concat(cmd, " "))
    assert.is_true(ok, out)
    local others, opens = other_exports(so)
    assert.same({}, others)
    assert.is_true(opens)
  end)

  it("exports only luaopen_truto_core as the Makefile builds it (the core these specs load)", function()
    local so
    for template in package.cpath:gmatch("[^;]+") do
      local path = template:gsub("%?", "truto/core")
      if path:match("^build/") and sh.read_file(path) then so = path break end
    end
    assert.is_string(so, package.cpath)
    local others, opens = other_exports(so)
    assert.same({}, others)
    assert.is_true(opens)
  end)
end)

describe("luarocks make", function()
  -- PUC Lua only: a LuaJIT user builds with OpenResty's own luarocks; and
  -- not under make check's instrumented stand-in for the interpreter
  -- (ASAN_OPTIONS set), which luarocks cannot find Lua's headers beside
  local it_puc = (IS_LUAJIT or os.getenv("ASAN_OPTIONS")) and pending or it
  local abi = _VERSION:match("%d+%.%d+")
  local dir, tree

  setup(function()
    if IS_LUAJIT or os.getenv("ASAN_OPTIONS") then return end
    local ok
    ok, dir = sh.run("mktemp -d")
    assert.is_true(ok, dir)
    dir = dir:match("^%s*(.-)%s*$")
    tree = dir .. "/tree"
    -- a copy, so the build's objects never land in this tree
    local out
    ok, out = sh.run("cp -r rockspec csrc lua bin " .. sh.quote(dir) .. " && cd " .. sh.quote(dir)
      .. " && luarocks --lua-version=" .. abi .. " make --tree=tree " .. SCM)
    assert.is_true(ok, out)
  end)
  teardown(function()
    if dir and dir:match("^/tmp/") then sh.run("rm -rf " .. sh.quote(dir)) end
  end)

  it_puc("builds truto-scm-0 from the checkout, its dependencies checked, into a tree whose modules load",
    function()
    local loaded = h.run_lua([[
      local truto = require "truto"
      for _, m in ipairs{ "truto.url", "truto.response", "truto.pace", "truto.webhooks" } do require(m) end
      local c = assert(truto.new{ token = "tok-12345", base_url = "HTTP://Example.com/" })
      io.write(c.base_url)]],
      -- ";;" adds Lua's default paths, never this tree's build/
      { LUA_PATH = tree .. "/share/lua/" .. abi .. "/?.lua;;",
        LUA_CPATH = tree .. "/lib/lua/" .. abi .. "/?.so;;" })
    assert.equal("http://example.com", loaded)
    assert.is_string(sh.read_file(tree .. "/share/lua/" .. abi .. "/truto/webhooks.lua"))
  end)

  it_puc("links core.so with every library it calls: nothing but Lua's own API is left undefined", function()
    local so = tree .. "/lib/lua/" .. abi .. "/truto/core.so"
    local ok, out = sh.run("ldd -r " .. sh.quote(so))
    assert.is_true(ok, out)
    local missing = {}
    for symbol in out:gmatch("undefined symbol: (%S+)") do
      if not symbol:match("^luaL?_") then missing[#missing + 1] = symbol end
    end
    assert.same({}, missing)
  end)

  it_puc("builds a core.so that exports only luaopen_truto_core", function()
    local others, opens = other_exports(tree .. "/lib/lua/" .. abi .. "/truto/core.so")
    assert.same({}, others)
    assert.is_true(opens)
  end)

  it_puc("installs the truto-groups command " .. (abi == "5.4" and "that runs" or "nowhere: it needs Lua 5.4"),
    function()
    local ok, out = sh.run("cd " .. sh.quote(dir) .. " && luarocks --lua-version=" .. abi
      .. " make --tree=tree " .. CLI_SCM)
    if abi == "5.4" then
      assert.is_true(ok, out)
      local ran, help = sh.run(sh.quote(tree .. "/bin/truto-groups") .. " --help")
      assert.is_true(ran, help)
      assert.matches("import", help)
    else
      assert.is_false(ok, out)
      assert.matches("lua >= 5.4", out, 1, true)
      assert.is_nil(sh.read_file(tree .. "/bin/truto-groups"))
    end
  end)
end)
