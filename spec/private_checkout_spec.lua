-- spec/private_checkout_spec.lua: the specs' servers work from a checkout
-- only its owner can read, as a user who clones into /root or a mktemp -d
-- directory (0700) meets it. There, run as root, nginx's workers would run
-- as `nobody` and answer 500 (the mock's and the OpenResty example's). A
-- copy of this tree in such a directory starts the mock and the example
-- from there, in a separate interpreter, and creates a group through both.
local h = require "spec.support.helpers"
local sh = require "spec.support.sh"
local openresty = require "spec.support.openresty"

local ROOT = openresty.root

-- What the copy runs: the mock and the example, each from the copy's own
-- files (spec.support.* find the tree from where they are).
local SCRIPT = [[
local cjson = require "cjson"
local mock = require "spec.support.mock"
local openresty = require "spec.support.openresty"
local m = mock.start()
local n = openresty.start { env = { TRUTO_BASE_URL = m.url, TRUTO_API_TOKEN = m.token } }
local status, body = openresty.http(n.port, "POST", "/groups?integrated_account_id="
  .. m.accounts.coupa .. "&group_type=team", '{"name":"Private"}')
local created = m:stats().created
n:stop()
m:stop()
io.write(cjson.encode { root = openresty.root, status = status, body = body, created = created })
]]

describe("a checkout in a private directory (0700)", function()
  it("runs the mock and the OpenResty example from there" .. (openresty.as_root and ", as root" or ""), function()
    local ok, dir = sh.run("mktemp -d")
    assert.is_true(ok, dir)
    dir = dir:match("^%s*(.-)%s*$")
    finally(function() sh.run("rm -rf -- " .. sh.quote(dir)) end)
    local _, mode = sh.run("stat -c %a " .. sh.quote(dir))
    assert.equal("700", mode:match("%d+"))
    local copy = dir .. "/truto-lua"
    -- the files the servers read (cp -a keeps the build up to date)
    local copied, out = sh.run("mkdir -p " .. sh.quote(copy .. "/build") .. " && cd " .. sh.quote(ROOT)
      .. " && cp -a Makefile csrc lua mock examples spec " .. sh.quote(copy)
      .. " && { [ ! -d build/luajit ] || cp -a build/luajit " .. sh.quote(copy .. "/build/") .. "; }")
    assert.is_true(copied, out)
    local answer, exited = h.run_lua("package.path = " .. ("%q"):format(copy .. "/?.lua;" .. copy
      .. "/lua/?.lua;") .. " .. package.path\n" .. SCRIPT, { LUA_PATH = os.getenv("LUA_PATH") or "" })
    assert.is_true(exited, answer)
    local result = h.decode(answer:match("{.*}") or answer)
    assert.equal(copy, result.root)
    assert.equal(201, result.status, result.body)
    assert.equal("Private", h.decode(result.body).name)
    assert.equal(1, result.created)
  end)
end)
