-- spec.support.cli_backends: the server the command-line specs
-- (spec/support/cli_harness.lua) run against — the real mock
-- (spec/support/mock.lua), started once per spec file. Spec plumbing
-- only: never starts anything but the mock.
local M = {}

function M.mock()
  local mock = require "spec.support.mock"
  local m
  return {
    start = function()
      m = mock.start()
      return { token = m.token, url = m.url, accounts = m.accounts }
    end,
    stop = function() if m then m:stop() end end,
    -- records and steps only: the groups a spec seeded through the API stay
    reset = function() m:forget_requests() end,
    requests = function() return m:requests() end,
    script = function(steps) m:script(steps) end,
    -- the running mock itself (its control API: objects, faults)
    instance = function() return m end,
  }
end

return M
