-- truto.url: the check a client's base_url passes at truto.new, so that a
-- URL no request could ever use is refused there (`invalid_argument`)
-- instead of failing later as a retryable `connect`, and so that what is
-- kept is one normal form (lower-case scheme and host, no trailing slash).
--
-- Must never: echo the URL, or any part of it, in a message (a password or
-- a token may be in it); accept a URL that libcurl or nginx would read
-- differently from what it says (a NUL libcurl cuts at, a unicode host it
-- cannot resolve, credentials it would send).

local M = {}

-- Bytes allowed in a host name: letters, digits, `-`, `.` and `_` (some
-- internal names have it). IPv6 literals are bracketed and checked apart.
local HOST_NAME = "^[%w%-%._]+$"
local IPV6 = "^%[[%x:%.]+%]$"

-- M.check_base_url(s) -> normalized_url | nil, detail
--   s: the base_url as given. normalized_url: `scheme://host[:port][/path]`
--   with the scheme and host lower-cased and trailing slashes removed.
--   detail: why it is refused, to follow the field name in a message
--   ("must ..."), never containing the URL itself.
function M.check_base_url(s)
  if type(s) ~= "string" then return nil, "must be a string (got " .. type(s) .. ")" end
  if s:find("[%z\1-\32\127]") then
    return nil, "must not contain control characters, NUL or spaces"
  end
  local scheme, rest = s:match("^(%a[%w+%.%-]*)://(.*)$")
  if not scheme then return nil, "must start with http:// or https://" end
  scheme = scheme:lower()
  if scheme ~= "http" and scheme ~= "https" then
    return nil, "must be an http:// or https:// URL"
  end
  if rest:find("[?#]") then return nil, "must not have a query (?...) or a fragment (#...)" end
  -- an @ anywhere: parsers disagree on where userinfo ends when it holds
  -- a "/", so none is guessed at
  if rest:find("@", 1, true) then
    return nil, "must not contain a user name or password (user:pass@): the token is the"
      .. " only credential sent, and a password in a URL would show in logs and messages"
  end
  local authority, path = rest:match("^([^/]*)(.*)$")
  local host, port = authority, nil
  if authority:sub(1, 1) == "[" then
    host, port = authority:match("^(%[[^%]]*%])(.*)$")
    if not host then return nil, "has an IPv6 address without its closing ]" end
    if not host:match(IPV6) then return nil, "has an invalid IPv6 address" end
  else
    local colon = authority:find(":", 1, true)
    if colon then host, port = authority:sub(1, colon - 1), authority:sub(colon) end
  end
  if host == "" then return nil, "must name a host (http://host or https://host)" end
  if host:find("[\128-\255]") then
    return nil, "must have an ASCII host: give an internationalized name in its punycode"
      .. " form (xn--...)"
  end
  if not host:match(IPV6) and not host:match(HOST_NAME) then
    return nil, "has a host with a character a host name cannot have"
  end
  if port and port ~= "" then
    local digits = port:match("^:(%d+)$")
    local n = digits and #digits <= 5 and tonumber(digits)
    if not n or n < 1 or n > 65535 then return nil, "must have a port from 1 to 65535" end
    port = ":" .. string.format("%d", n)
  else
    port = ""
  end
  if path:find("[\128-\255]") then
    return nil, "must have an ASCII path: percent-encode other bytes (%XX)"
  end
  -- the path goes out as it is written (the request target), so a "." or
  -- ".." segment, which a URL parser would resolve first, is refused
  for segment in (path .. "/"):gmatch("/([^/]*)") do
    if segment == "." or segment == ".." then
      return nil, "must not have . or .. path segments (write the path they lead to)"
    end
  end
  path = path:gsub("/+$", "")
  return scheme .. "://" .. host:lower() .. port .. path
end

-- M.origin_of(url) -> "scheme://authority", lower-cased, for the
-- same-origin check a redirect passes before Authorization follows it.
function M.origin_of(url)
  local scheme, authority = url:match("^(%a[%w+.-]*)://([^/?#]*)")
  return (scheme or ""):lower() .. "://" .. (authority or ""):lower()
end

-- M.resolve_location(base, location) -> the absolute URL a redirect's
-- Location names, seen from the URL that answered it (the nginx and HAProxy
-- transports follow redirects themselves; libcurl does its own).
function M.resolve_location(base, location)
  if location:match("^%a[%w+.-]*://") then return location end
  local origin = base:match("^(%a[%w+.-]*://[^/?#]*)")
  if location:sub(1, 2) == "//" then return base:match("^(%a[%w+.-]*:)") .. location end
  if location:sub(1, 1) == "/" then return origin .. location end
  return (base:match("^(%a[%w+.-]*://[^?#]*/)") or (origin .. "/")) .. location
end

return M
