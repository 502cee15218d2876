-- truto-groups list, get, update, delete and sync against the in-process
-- fake of the extended groups API (spec/support/fake_truto.lua): the same
-- behaviour specs as spec/cli_commands_spec.lua and spec/cli_sync_spec.lua
-- (spec/support/cli_groups_cases.lua), runnable before the mock serves
-- list, get, update and delete. The command always runs as lua5.4.
local cases = require "spec.support.cli_groups_cases"
local backends = require "spec.support.cli_backends"
local BUSTED = { describe = describe, it = it, setup = setup, teardown = teardown, before_each = before_each }

describe("truto-groups against the fake API:", function()
  describe("the commands", function() cases.commands(backends.fake(), BUSTED) end)
  describe("sync", function() cases.sync(backends.fake(), BUSTED) end)
end)
