-- LuaRocks build of truto-groups, the command-line tool (Lua 5.4), from
-- this checkout, on the truto rock built from it. From the repository
-- root, after rockspec/truto-scm-0.rockspec:
--   luarocks make rockspec/truto-groups-scm-0.rockspec
-- (never with --deps-mode=none: that would skip the Lua 5.4 check too).
package = "truto-groups"
version = "scm-0"
-- where the checkout will be published (not yet); `luarocks make` builds
-- the checkout it runs in and never fetches this
source = {
  url = "git+https://github.com/truto-lua/truto-lua.git",
  branch = "main",
}
description = {
  summary = "truto-groups: create, import and sync Truto groups from the command line",
  detailed = [[
    The command-line tool of truto (see `truto-groups --help`). It needs
    Lua 5.4; the truto library it runs on works on 5.1-5.4 and LuaJIT.
  ]],
  license = "MIT",
  homepage = "https://github.com/truto-lua/truto-lua",
}
-- Lua 5.4 only: LuaRocks refuses it for another Lua (unless told to skip
-- dependencies), so no Lua gets a command that cannot run on it.
dependencies = { "lua >= 5.4, < 5.5", "truto = scm" }
build = {
  type = "builtin",
  modules = {
    ["truto.cli.args"] = "lua/truto/cli/args.lua",
    ["truto.cli.input"] = "lua/truto/cli/input.lua",
    ["truto.cli.json"] = "lua/truto/cli/json.lua",
    ["truto.cli.results"] = "lua/truto/cli/results.lua",
    ["truto.cli.rows"] = "lua/truto/cli/rows.lua",
    ["truto.cli.commands"] = "lua/truto/cli/commands.lua",
    ["truto.cli.progress"] = "lua/truto/cli/progress.lua",
    ["truto.cli.sync"] = "lua/truto/cli/sync.lua",
  },
  install = {
    bin = { ["truto-groups"] = "bin/truto-groups" },
  },
}
