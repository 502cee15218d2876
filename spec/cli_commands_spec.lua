-- truto-groups list, get, update and delete against the real mock: every
-- page of a list, CSV output, a page failing midway, progress only on a
-- terminal, get/update/delete on the wire (method, path, escaped id, query,
-- body or none, headers), delete's confirmation. The behaviour specs live
-- in spec/support/cli_groups_cases.lua.
-- The command always runs as lua5.4.
local cases = require "spec.support.cli_groups_cases"
local backends = require "spec.support.cli_backends"
local BUSTED = { describe = describe, it = it, setup = setup, teardown = teardown, before_each = before_each }

describe("truto-groups list, get, update and delete against the mock:", function()
  cases.commands(backends.mock(), BUSTED)
end)
