-- Every userdata the core makes (curl handles, shares, multi handles,
-- endpoints, response parsers) and every client is collected once
-- unreachable, closing what it holds: the spec counts this process's open
-- file descriptors (connections) and watches weak tables. close() is
-- idempotent everywhere, and a closed client or handle says so clearly.
local truto = require "truto"
local core = require "truto.core"
local mock = require "spec.support.mock"
local sh = require "spec.support.sh"

local PID = assert(io.open("/proc/self/stat")):read("*l"):match("^(%d+)")

-- What each open file descriptor of this process points at, after a full
-- collection. The pipe the listing comes through is left out: io.popen's
-- child can read /proc/PID/fd before this process has closed its copy of
-- the pipe's write end, which on a loaded machine counted one descriptor
-- too many. The shell names its own stdout pipe and skips it.
local LIST_FDS = [[
self=$(readlink /proc/$$/fd/1)
for fd in /proc/]] .. PID .. [[/fd/*; do
  target=$(readlink "$fd") || continue
  [ "$target" = "$self" ] || echo "${fd##*/} -> $target"
done]]

local function fd_list()
  -- LuaJIT's compiled traces can hold objects they specialised on (a
  -- closure's upvalue: the client) until they are flushed
  if rawget(_G, "jit") then jit.flush() end
  collectgarbage("collect")
  collectgarbage("collect")
  local ls = assert(io.popen("sh -c " .. sh.quote(LIST_FDS)))
  local list = {}
  for line in ls:lines() do list[#list + 1] = line end
  ls:close()
  return list
end

local function open_fds() return #fd_list() end

-- Asserts the process is back to `want` descriptors. Polls for up to 10 s:
-- what is being checked is that nothing leaks, not how fast a loaded
-- machine gets round to a close; the message lists what is still open.
local function assert_fds(want)
  local deadline = core.now() + 10
  local list
  repeat
    list = fd_list()
    if #list == want then return end
    core.sleep(0.05)
  until core.now() > deadline
  assert.equal(want, #list, "open descriptors:\n" .. table.concat(list, "\n"))
end

-- Is the object made by make() collected once dropped?
local function collected(make)
  local weak = setmetatable({}, { __mode = "v" })
  weak[1] = make()
  assert.is_not_nil(weak[1])
  collectgarbage("collect")
  collectgarbage("collect")
  return weak[1] == nil
end

describe("the core's own state", function()
  -- csrc/class.c makes every userdata (class.h): the state the core's
  -- functions keep as upvalues too, so each names its class and a new one
  -- cannot skip the helper unseen. core.null, the one light userdata, is a
  -- value, not state.
  -- Lua 5.1's debug.getupvalue does not show a C function's upvalues
  local it_upvalues = debug.getupvalue(core.uuid4, 1) ~= nil and it or pending
  it_upvalues("is userdata made by the one class helper: each with a metatable naming its class", function()
    local seen, classes = {}, {}
    local function walk(value, where)
      if seen[value] then return end
      seen[value] = true
      if type(value) == "table" then
        for k, v in pairs(value) do walk(v, where .. "." .. tostring(k)) end
      elseif type(value) == "function" then
        for i = 1, math.huge do
          local name, upvalue = debug.getupvalue(value, i)
          if name == nil then break end
          walk(upvalue, where .. " upvalue " .. i)
        end
      elseif type(value) == "userdata" and value ~= core.null then
        local mt = debug.getmetatable(value)
        assert.is_table(mt, where .. " has no metatable")
        assert.matches("^truto%.", tostring(mt.__name))
        classes[mt.__name] = true
      end
    end
    walk(core, "core")
    assert.is_true(classes["truto.json_key_cache"])
    assert.is_true(classes["truto.random_pool"])
  end)
end)

describe("garbage collection and close()", function()
  local m

  local function new_client(extra)
    local config = { token = m.token, base_url = m.url, integrated_account_id = m.accounts.coupa }
    for k, v in pairs(extra or {}) do config[k] = v end
    return assert(truto.new(config))
  end

  setup(function() m = mock.start() end)
  teardown(function() if m then m:stop() end end)
  before_each(function() m:reset() end)

  describe("collects", function()
    it("curl handles, shares and multi handles", function()
      assert.is_true(collected(function() return core.curl{} end))
      assert.is_true(collected(function() return core.share() end))
      assert.is_true(collected(function() return core.multi{} end))
      assert.is_true(collected(function()
        local share = core.share()
        core.multi{ share = share }
        return core.curl{ share = share }
      end))
    end)

    it("endpoints and response parsers", function()
      local plan = { path = "/unified/user-directory/groups", body = { fields = {}, open = true },
        query = { fields = {}, open = true } }
      assert.is_true(collected(function() return core.operation(plan) end))
      assert.is_true(collected(function()
        local build = core.operation(plan)
        assert(build({ name = "x" }, { integrated_account_id = m.accounts.coupa }))
        return build
      end))
      assert.is_true(collected(function()
        local p = core.http_response()
        p:feed("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        return p
      end))
    end)

    it("a client that made a request, and its connection closes with it", function()
      local before = open_fds()
      local weak = setmetatable({}, { __mode = "v" })
      do
        local c = new_client()
        assert.is_table((c.groups.create{ name = "x" }))
        weak[1] = c
        assert.is_true(open_fds() > before) -- a keep-alive connection, at least
      end
      assert_fds(before)
      assert.is_nil(weak[1])
    end)

    it("a client that ran create_many (its multi handle and pooled connections)", function()
      local before = open_fds()
      do
        local c = new_client()
        local results = c.groups.create_many({ { name = "a" }, { name = "b" }, { name = "c" } }, nil,
          { concurrency = 3 })
        for i = 1, 3 do assert.is_table(results[i].group, tostring(results[i].err)) end
        -- LuaJIT keeps a block's dead locals in the frame until overwritten
        c, results = nil, nil -- luacheck: ignore
      end
      assert_fds(before)
    end)

    it("hundreds of clients, closed or just dropped, without growing", function()
      local before, memory = open_fds(), nil
      for round = 1, 2 do
        for i = 1, 100 do
          local c = new_client()
          assert.is_table((c.groups.create{ name = "g" .. i }))
          if i % 2 == 0 then c:close() end
        end
        assert_fds(before)
        local kb = collectgarbage("count")
        if round == 1 then memory = kb else assert.is_true(kb < memory * 1.5 + 256, kb .. " KB") end
      end
    end)

    it("the module's state under a full collection in the middle of a request", function()
      local c = new_client()
      local pieces = {}
      local ok, meta = c.groups.create({ name = "x" }, { truto_response_format = "stream" },
        { sink = function(chunk) collectgarbage("collect"); pieces[#pieces + 1] = chunk end })
      assert.is_true(ok, tostring(meta))
      assert.is_true(#pieces >= 1)
      local group = c.groups.create{ name = "y" }
      assert.is_table(group)
      c:close()
    end)
  end)

  describe("close()", function()
    it("releases the connection at once and may be called again", function()
      local before = open_fds()
      local c = new_client()
      assert.is_table((c.groups.create{ name = "x" }))
      c:close()
      local closed = fd_list()
      c:close()
      c:close()
      assert.equal(before, #closed, "open descriptors:\n" .. table.concat(closed, "\n"))
      assert.equal("truto.client (" .. m.url .. ", closed)", tostring(c))
    end)

    it("is idempotent on every handle", function()
      local share = core.share()
      local handle = core.curl{ share = share }
      local multi = core.multi{ share = share }
      for _ = 1, 3 do
        multi:close()
        handle:close()
        share:close()
      end
      assert.equal("truto.curl (closed)", tostring(handle))
    end)

    it("makes a closed client raise a clear error, for create and create_many", function()
      local c = new_client()
      c:close()
      local ok, why = pcall(c.groups.create, { name = "x" })
      assert.is_false(ok)
      assert.matches("attempt to use a closed truto client", why)
      ok, why = pcall(c.groups.create_many, { { name = "x" } })
      assert.is_false(ok)
      assert.matches("attempt to use a closed truto client", why)
      assert.equal(0, #m:requests())
    end)

    it("makes closed handles raise a clear error", function()
      local handle = core.curl{}
      handle:close()
      local ok, why = pcall(handle.request, handle, "POST", m.url, {}, "{}")
      assert.is_false(ok)
      assert.matches("closed", why)
      local multi = core.multi{}
      multi:close()
      ok, why = pcall(multi.perform, multi, 0)
      assert.is_false(ok)
      assert.matches("closed", why)
    end)

    -- `<close>` is Lua 5.4 syntax: the chunk is only compiled there
    local it_on_54 = _VERSION == "Lua 5.4" and it or pending
    it_on_54("runs on leaving scope for a to-be-closed client (Lua 5.4)", function()
      local before = open_fds()
      local scoped = assert(load([[
        local c, create = ...
        do
          local client <close> = c
          create(client)
        end
        return c
      ]]))
      local c = scoped(new_client(), function(client) assert(client.groups.create{ name = "x" }) end)
      assert.is_true(c.closed)
      assert_fds(before)
    end)
  end)
end)
