-- LuaRocks release of truto-groups, the command-line tool (Lua 5.4), on
-- the truto rock of the same version.
--
-- NOT PUBLISHED YET: its source, tag v0.1.0 of
-- https://github.com/truto-lua/truto-lua, does not exist yet. Build from a
-- checkout instead (after truto-scm-0.rockspec):
--   luarocks make rockspec/truto-groups-scm-0.rockspec
package = "truto-groups"
version = "0.1.0-1"
source = {
  url = "git+https://github.com/truto-lua/truto-lua.git",
  tag = "v0.1.0",
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
dependencies = { "lua >= 5.4, < 5.5", "truto = 0.1.0" }
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
