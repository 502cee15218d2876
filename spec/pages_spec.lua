-- list, each and pages against a hostile server (issue 18 items 1, 14, 15):
-- a 2xx page without a result table is a decode error, never an empty last
-- page; each refuses the raw and stream formats before sending; a cursor
-- that is not a string, that repeats (the caller's starting one included)
-- or an entry that is not an object ends the walk with one decode error;
-- no error carries the token. Pages are scripted on the real mock.
local truto = require "truto"
local mock = require "spec.support.mock"
local h = require "spec.support.helpers"
local cjson = require "cjson"

local TOKEN = "tok-pages-5ecret-0123456789"

describe("pages", function()
  local m, client

  setup(function()
    m = mock.start { token = TOKEN }
    client = assert(truto.new { token = m.token, base_url = m.url, integrated_account_id = h.SEED_ACCOUNT })
    client.sleep = function() end
  end)
  teardown(function()
    if client then client:close() end
    if m then m:stop() end
  end)
  before_each(function() m:reset() end)

  local function page(items, next_cursor, extra)
    local j = { result = items, next_cursor = next_cursor or cjson.null, prev_cursor = cjson.null,
      result_count = type(items) == "table" and #items or 0, is_partial_response = false }
    for k, v in pairs(extra or {}) do j[k] = v end
    return { status = 200, json = j }
  end

  -- every (item | false, err) each yields
  local function walk(query)
    local got, errs = {}, {}
    for g, err in client.groups.each(query) do
      if g then got[#got + 1] = g else errs[#errs + 1] = err end
    end
    return got, errs
  end

  local function no_token(err)
    local seen = {}
    local function check(v)
      if type(v) == "string" then assert.is_nil(v:find(TOKEN, 1, true), v)
      elseif type(v) == "table" and not seen[v] then
        seen[v] = true
        for k, x in pairs(v) do check(k) check(x) end
      end
    end
    check(err)
    assert.is_nil(tostring(err):find(TOKEN, 1, true))
  end

  describe("a 2xx page without a result table", function()
    local shapeless = {
      ["{}"] = { status = 200, body = "{}" },
      ["a bare array"] = { status = 200, body = '[{"id":"1","name":"a"}]' },
      ['{"data": ...}'] = { status = 200, body = '{"data":[{"id":"1"}],"next_cursor":null}' },
      ["result a string"] = { status = 200, body = '{"result":"none","next_cursor":null}' },
      ["result null"] = { status = 200, body = '{"result":null,"next_cursor":null}' },
    }
    for what, step in pairs(shapeless) do
      it("is a decode error from list and each, never an empty last page: " .. what, function()
        m:script { step }
        local p, err = client.groups.list()
        assert.is_nil(p)
        assert.equal("decode", err.kind)
        assert.matches("result array", err.message)
        m:script { page({ { id = "1", name = "a" } }, "c2"), step }
        local got, errs = walk()
        assert.equal(1, #got)
        assert.equal(1, #errs)
        assert.equal("decode", errs[1].kind)
        assert.equal(3, #m:requests()) -- the list, then two pages
      end)
    end

    it("still takes an object keyed by truto_key_by, and an empty result", function()
      m:script { page({ a = { id = "a" }, b = { id = "b" } }, "c2"), page({}) }
      local got, errs = walk { truto_key_by = "id" }
      assert.same({}, errs)
      assert.equal(2, #got)
      assert.equal("a", got[1].id)
      assert.equal("b", got[2].id)
    end)
  end)

  describe("each", function()
    for _, format in ipairs { "raw", "stream" } do
      it("refuses truto_response_format = " .. format .. " up front, sending nothing", function()
        local got, errs = walk { truto_response_format = format }
        assert.same({}, got)
        assert.equal(1, #errs)
        assert.equal("invalid_argument", errs[1].kind)
        assert.equal("truto_response_format", errs[1].field)
        assert.matches("unified shape", errs[1].message)
        assert.equal(0, #m:requests())
      end)
    end

    for what, cursor in pairs { number = 12, boolean = true, object = { at = 2 }, array = { "x" } } do
      it("ends with a decode error for a next_cursor that is " .. what, function()
        m:script { page({ { id = "1" } }, cursor), page({ { id = "2" } }) }
        local got, errs = walk()
        assert.same({}, got)
        assert.equal(1, #errs)
        assert.equal("decode", errs[1].kind)
        assert.matches("next_cursor must be a string or null", errs[1].message)
        assert.equal(1, #m:requests())
        local p = client.groups.list()
        assert.is_table(p) -- the second scripted page
        m:script { page({ { id = "1" } }, cursor) }
        local err
        p, err = client.groups.list()
        assert.is_nil(p)
        assert.equal("decode", err.kind)
      end)
    end

    it("catches a cursor that repeats the one the caller started from before yielding a page twice", function()
      m:script { page({ { id = "3" } }, "start"), page({ { id = "3" } }, "start") }
      local got, errs = walk { next_cursor = "start" }
      assert.equal(1, #got)
      assert.equal("3", got[1].id)
      assert.equal(1, #errs)
      assert.equal("decode", errs[1].kind)
      assert.matches("a second time", errs[1].message)
      assert.equal(1, #m:requests())
      assert.matches("next_cursor=start", m:requests()[1].request_line, 1, true)
    end)

    for what, entry in pairs { ["false"] = false, number = 7, string = "g", null = cjson.null, array = { 1 } } do
      it("ends with a decode error for a result entry that is " .. what .. ", never yielding it", function()
        m:script { page({ { id = "1" }, entry, { id = "3" } }) }
        local got, errs = walk()
        assert.same({}, got)
        assert.equal(1, #errs)
        assert.equal("decode", errs[1].kind)
        assert.matches("entry 2 is", errs[1].message)
      end)
    end

    it("yields nothing more after an error", function()
      m:script { page({ 5 }) }
      local it_, n = client.groups.each(), 0
      assert.is_false((it_()))
      for _ = 1, 3 do if it_() ~= nil then n = n + 1 end end
      assert.equal(0, n)
    end)
  end)

  describe("errors never carry the token", function()
    it("in each's repeated-cursor error, when a hostile server echoes it as the cursor", function()
      m:script { page({ { id = "1" } }, TOKEN), page({ { id = "2" } }, TOKEN) }
      local got, errs = walk()
      assert.equal(2, #got)
      assert.equal(1, #errs)
      assert.matches("a second time", errs[1].message)
      assert.matches("[REDACTED]", errs[1].message, 1, true)
      no_token(errs[1])
    end)

    it("in the caller's repeated starting cursor and a bad entry's error", function()
      m:script { page({ { id = "1" } }, TOKEN .. "x") }
      local _, errs = walk { next_cursor = TOKEN .. "x" }
      no_token(errs[1])
      m:script { page({ TOKEN }) }
      _, errs = walk()
      assert.equal("decode", errs[1].kind)
      no_token(errs[1])
    end)

    it("in a shapeless page's decode error, which echoes the body", function()
      m:script { { status = 200, body = '{"data":"' .. TOKEN .. '"}' } }
      local p, err = client.groups.list()
      assert.is_nil(p)
      assert.equal("decode", err.kind)
      no_token(err)
      m:script { { status = 200, body = '{"result":[],"next_cursor":{"t":"' .. TOKEN .. '"}}' } }
      local _, errs = walk()
      assert.equal("decode", errs[1].kind)
      no_token(errs[1])
    end)
  end)
end)
