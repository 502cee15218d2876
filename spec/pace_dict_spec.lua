-- The rate_limit_dict budget across nginx workers: two workers reserving
-- at once from one lua_shared_dict never allow more than the limit
-- (issue 18 item 10). Runs the OpenResty example with two workers.
local openresty = require "spec.support.openresty"
local socket = require "socket"

local ROUNDS = 12

local LOCATIONS = [[
    location = /spec/dict-race {
      content_by_lua_block {
        -- Both requests run at once, each on its own worker (the barrier
        -- spins without yielding, so the other connection goes to the
        -- other worker); every round starts together, then each worker
        -- reserves 20,000 times from one token budget of 2,000 (stopping
        -- early once refused 500 times in a row: the budget is spent).
        local pace = require "truto.pace"
        local dict = ngx.shared.truto_rate
        local id = ngx.var.arg_id
        local function barrier(name)
          dict:incr(name, 1, 0)
          local deadline = ngx.now() + 2
          while dict:get(name) < 2 and ngx.now() < deadline do ngx.update_time() end
        end
        local limits = assert(pace.check{ token = { limit = 2000, window = 60 }, account = false })
        local out = { ngx.worker.id() }
        for round = 1, ]] .. ROUNDS .. [[ do
          barrier(id .. "/" .. round)
          local b = pace.new(limits, assert(pace.shared_store("truto_rate")), id .. "/" .. round)
          local allowed, refused = 0, 0
          for _ = 1, 20000 do
            if b:reserve(nil, 1000.0) == 0 then
              allowed, refused = allowed + 1, 0
            else
              refused = refused + 1
              if refused == 500 then break end
            end
          end
          out[#out + 1] = allowed
        end
        ngx.say(table.concat(out, " "))
      }
    }
]]

describe("the rate_limit_dict budget", function()
  local n
  setup(function() n = openresty.start { workers = 2, locations = LOCATIONS } end)
  teardown(function() if n then n:stop() end end)

  it("is atomic across nginx workers: 2 x 20,000 reservations never pass a limit of 2,000", function()
    local conns, id = {}, tostring(socket.gettime())
    for i = 1, 2 do
      local c = assert(socket.tcp())
      c:settimeout(20)
      assert(c:connect("127.0.0.1", n.port))
      assert(c:send("GET /spec/dict-race?id=" .. id .. " HTTP/1.0\r\n\r\n"))
      conns[i] = c
      -- the first worker is then spinning, so the other takes this one
      if i == 1 then socket.sleep(0.05) end
    end
    local answers = {}
    for i = 1, 2 do
      local text = conns[i]:receive("*a")
      conns[i]:close()
      local list = {}
      for v in text:match("\r\n\r\n(.*)"):gmatch("%d+") do list[#list + 1] = tonumber(v) end
      assert.equal(ROUNDS + 1, #list, text)
      answers[i] = list
    end
    assert.are_not.equal(answers[1][1], answers[2][1], "both ran on one worker")
    for round = 1, ROUNDS do
      local total = answers[1][round + 1] + answers[2][round + 1]
      assert.is_true(total <= 2000, "round " .. round .. ": " .. total .. " allowed")
      assert.is_true(total >= 1990, "round " .. round .. ": only " .. total .. " allowed")
    end
  end)
end)
