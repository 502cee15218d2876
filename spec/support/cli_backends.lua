-- spec.support.cli_backends: the two servers the command-line specs of
-- spec/support/cli_groups_cases.lua run against — the real mock
-- (spec/support/mock.lua) and the fake of the extended API
-- (spec/support/fake_truto.lua, its state in a temporary JSON file that
-- every command process reads and writes through LUA_INIT). Spec plumbing
-- only: never starts anything but the mock, never deletes a file it did
-- not make.
local M = {}

function M.mock()
  local mock = require "spec.support.mock"
  local m
  return {
    -- a real server: transfers in flight can be abandoned
    abandons = true,
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

function M.fake()
  local fake = require "spec.support.fake_truto"
  local path
  local function update(change)
    local state = fake.load_file(path)
    change(state)
    fake.save_file(path, state)
  end
  return {
    start = function()
      local p = assert(io.popen("mktemp /tmp/truto-fake-state.XXXXXX"))
      path = p:read("*l")
      p:close()
      fake.save_file(path, fake.empty())
      return { token = fake.TOKEN, url = fake.BASE_URL, accounts = fake.ACCOUNTS,
        env = { LUA_INIT = "require('spec.support.fake_truto').install('" .. path .. "')" } }
    end,
    stop = function()
      if path and path:match("^/tmp/truto%-fake%-state%.") then
        os.remove(path)
        os.remove(path .. ".tmp")
      end
    end,
    reset = function()
      update(function(state) state.requests, state.script, state.replays = {}, {}, {} end)
    end,
    requests = function() return fake.load_file(path).requests end,
    script = function(steps) update(function(state) state.script = steps end) end,
  }
end

return M
