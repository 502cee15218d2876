-- truto.time: wall-clock time, for the times that come over the wire: the
-- one clock they are compared with and the one date conversion, shared by
-- Retry-After (truto.response) and webhooks' created_at (truto.webhooks).
-- Elapsed time and deadlines use core.now, the monotonic clock, instead.
--
-- Must never read a date through this machine's time zone (os.time with a
-- table, os.date without "!") or accept a date that does not exist.

local M = {}

local floor = math.floor

-- M.now() -> seconds since the epoch: ngx.now() inside nginx (the cached
-- time of the event loop), else os.time() (UTC-based on every POSIX system).
function M.now()
  local ngx = rawget(_G, "ngx")
  if ngx and ngx.now then return ngx.now() end
  return os.time()
end

local DAYS_IN_MONTH = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

local function is_leap(y)
  return (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0
end

-- M.utc(year, month, day, hour, minute, second) -> seconds since the epoch
-- of that UTC time (second may be 60, a leap second, or have a fraction),
-- or nil when no such date or time exists. Days from Howard Hinnant's
-- days_from_civil (proleptic Gregorian).
function M.utc(y, mo, d, h, mi, s)
  if mo < 1 or mo > 12 or d < 1 or d > DAYS_IN_MONTH[mo] or (mo == 2 and d == 29 and not is_leap(y))
    or h > 23 or mi > 59 or s >= 61 then
    return nil
  end
  local yy = mo <= 2 and y - 1 or y
  local era = floor(yy / 400)
  local yoe = yy - era * 400
  local doy = floor((153 * ((mo + 9) % 12) + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return (era * 146097 + doe - 719468) * 86400 + h * 3600 + mi * 60 + s
end

-- M.iso8601("2026-12-01T22:15:58.123Z") -> seconds since the epoch, or nil.
-- RFC 3339 / ISO 8601 date-time: a `T` (or `t`, or one space) between date
-- and time, optional fractional seconds, and a zone that must be there:
-- `Z`, `+HH:MM`, `+HHMM` or `+HH` (or `-`). A time without a zone is nil:
-- it names no single instant.
function M.iso8601(text)
  if type(text) ~= "string" or #text > 64 then return nil end
  local y, mo, d, h, mi, s, rest = text:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt ](%d%d):(%d%d):(%d%d)(.*)$")
  if not y then return nil end
  local fraction = 0
  local digits, zone = rest:match("^%.(%d+)(.*)$")
  if digits then
    fraction = tonumber("0." .. digits)
    rest = zone
  end
  local offset
  if rest == "Z" or rest == "z" then
    offset = 0
  else
    local sign, oh, om = rest:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then
      sign, oh = rest:match("^([+-])(%d%d)$")
      om = "00"
    end
    if not sign then return nil end
    oh, om = tonumber(oh), tonumber(om)
    if oh > 23 or om > 59 then return nil end
    offset = (oh * 60 + om) * 60
    if sign == "-" then offset = -offset end
  end
  local t = M.utc(tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(s) + fraction)
  return t and t - offset
end

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8,
  Sep = 9, Oct = 10, Nov = 11, Dec = 12 }

local WEEKDAYS = { Mon = true, Tue = true, Wed = true, Thu = true, Fri = true, Sat = true,
  Sun = true, Monday = true, Tuesday = true, Wednesday = true, Thursday = true, Friday = true,
  Saturday = true, Sunday = true }

-- The fields of an HTTP date in any of the three forms RFC 9110 makes
-- recipients accept: IMF-fixdate, RFC 850 and asctime. Returns weekday,
-- day, month, year, hour, minute, second as strings, or nil.
local function date_fields(s)
  local wd, d, mon, y, h, mi, sec = s:match("^(%a+), (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  if wd then return wd, d, mon, y, h, mi, sec end
  wd, d, mon, y, h, mi, sec = s:match("^(%a+), (%d%d)%-(%a%a%a)%-(%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  if wd then
    -- two-digit years: RFC 9110 says read them as the nearest century
    local yy = tonumber(y)
    return wd, d, mon, tostring(yy < 70 and 2000 + yy or 1900 + yy), h, mi, sec
  end
  wd, mon, d, h, mi, sec, y = s:match("^(%a%a%a) (%a%a%a) ([ %d]%d) (%d%d):(%d%d):(%d%d) (%d%d%d%d)$")
  if wd then return wd, (d:gsub(" ", "0")), mon, y, h, mi, sec end
  return nil
end

-- M.http_date("Sun, 06 Nov 1994 08:49:37 GMT") -> seconds since the epoch
-- that an HTTP date names, or nil.
function M.http_date(s)
  if type(s) ~= "string" then return nil end
  local wd, d, mon, y, h, mi, sec = date_fields(s)
  if not wd or not WEEKDAYS[wd] or not MONTHS[mon] then return nil end
  return M.utc(tonumber(y), MONTHS[mon], tonumber(d), tonumber(h), tonumber(mi), tonumber(sec))
end

return M
