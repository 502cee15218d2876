-- truto-groups sync against the real mock: create, update, prune, dry run,
-- duplicate names, --match id, a failed listing, and --resume after a
-- refused and after a lost create. The behaviour specs live in
-- spec/support/cli_groups_cases.lua (shared with spec/cli_fake_spec.lua).
-- The command always runs as lua5.4.
local cases = require "spec.support.cli_groups_cases"
local backends = require "spec.support.cli_backends"
local BUSTED = { describe = describe, it = it, setup = setup, teardown = teardown, before_each = before_each }

describe("truto-groups sync against the mock:", function()
  cases.sync(backends.mock(), BUSTED)
end)
