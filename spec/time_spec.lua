-- The one wall clock and date conversion (truto.time) and the one rule for
-- seconds handed on as milliseconds (core.milliseconds), which every
-- transport shares. Pure: no network, no sleeping.
local core = require "truto.core"
local time = require "truto.time"
local response = require "truto.response"
local webhooks = require "truto.webhooks"

describe("core.milliseconds", function()
  it("rounds up, so no timeout or wait ends sooner than asked", function()
    assert.equal(1000, core.milliseconds(1))
    assert.equal(1501, core.milliseconds(1.5001))
    assert.equal(2, core.milliseconds(0.0011))
    assert.equal(250, core.milliseconds(0.25))
  end)

  it("is at least 1 (0 is \"no limit\" to libcurl) and at most 2^31 - 1; NaN is 1", function()
    assert.equal(1, core.milliseconds(0))
    assert.equal(1, core.milliseconds(-5))
    assert.equal(1, core.milliseconds(0 / 0))
    assert.equal(2147483647, core.milliseconds(1e300))
    assert.equal(2147483647, core.milliseconds(math.huge))
  end)
end)

describe("truto.time", function()
  it("utc counts days without this machine's time zone, leap years included", function()
    assert.equal(0, time.utc(1970, 1, 1, 0, 0, 0))
    assert.equal(951782400, time.utc(2000, 2, 29, 0, 0, 0))
    assert.equal(1796163358.5, time.utc(2026, 12, 1, 22, 15, 58.5))
    assert.equal(-86400, time.utc(1969, 12, 31, 0, 0, 0))
  end)

  it("utc refuses dates and times that do not exist", function()
    for _, t in ipairs {
      { 2026, 2, 29, 0, 0, 0 }, { 1900, 2, 29, 0, 0, 0 }, { 2026, 4, 31, 0, 0, 0 }, { 2026, 13, 1, 0, 0, 0 },
      { 2026, 0, 1, 0, 0, 0 }, { 2026, 1, 0, 0, 0, 0 }, { 2026, 1, 1, 24, 0, 0 }, { 2026, 1, 1, 0, 60, 0 },
      { 2026, 1, 1, 0, 0, 61 },
    } do
      assert.is_nil(time.utc(t[1], t[2], t[3], t[4], t[5], t[6]), table.concat(t, "-"))
    end
  end)

  it("is the one date conversion of Retry-After dates and webhooks' created_at", function()
    -- response.http_date hands every date to truto.time (loaded on first use)
    for _, d in ipairs{ "Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994", "Tue, 30 Feb 2027 00:00:00 GMT", "garbage", "" } do
      assert.equal(time.http_date(d), response.http_date(d), d)
    end
    local calls, real = 0, time.http_date
    time.http_date = function(v) calls = calls + 1; return real(v) end
    local ok, err = pcall(response.http_date, "Sun, 06 Nov 1994 08:49:37 GMT")
    time.http_date = real
    assert(ok, err)
    assert.equal(1, calls)
    assert.equal(time.iso8601, webhooks.parse_time)
    assert.equal(784111777, time.http_date("Sun, 06 Nov 1994 08:49:37 GMT"))
    assert.equal(784111777, time.http_date("Sunday, 06-Nov-94 08:49:37 GMT"))
    assert.equal(784111777, time.http_date("Sun Nov  6 08:49:37 1994"))
    assert.equal(784111777, time.iso8601("1994-11-06T09:49:37+01:00"))
    assert.is_nil(time.http_date("Tue, 30 Feb 2027 00:00:00 GMT"))
    assert.is_nil(time.iso8601("2027-02-30T00:00:00Z"))
    assert.is_nil(time.http_date(nil))
  end)

  it("now is the wall clock: ngx.now() inside nginx, else os.time()", function()
    assert.is_true(math.abs(time.now() - os.time()) <= 1)
    local saved = rawget(_G, "ngx")
    rawset(_G, "ngx", { now = function() return 1234.5 end })
    local ok, t = pcall(time.now)
    rawset(_G, "ngx", saved)
    assert.is_true(ok)
    assert.equal(1234.5, t)
  end)
end)
