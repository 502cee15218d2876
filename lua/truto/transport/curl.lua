-- truto.transport.curl: the default transport outside nginx. Adapts the C
-- libcurl handle (csrc/transport_curl.c) to the transport contract every
-- transport follows:
--
--   transport:request(req) -> status, headers, body
--                           | nil, kind, message, sent, which_timeout
--   req = { method, url, headers = { "Name: value", ... }, body (nil: none), timeout,
--           connect_timeout, max_response_bytes, stall_timeout, sink,
--           follow_redirects }
--   headers come back as a table with lower-case names. `sent` is false
--   only when the request cannot have reached the server.
--   transport:close() is idempotent; it raises (closing nothing) when called
--   from inside one of its own requests, from a sink. request() raises when
--   called again from inside its own sink. README "Transports" documents the
--   contract in full (each failure kind, what `sent` must mean).

local core = require "truto.core"

local M = {}
M.__index = M

-- The protocol each call shape is fastest on over HTTPS, measured (README
-- "Benchmark", bench/NOTES.md): one call at a time, HTTP/1.1 (1.04-1.35x
-- the rate of HTTP/2 on loopback for less CPU, in four runs); 16 in
-- flight, HTTP/1.1 as well (1.09-1.12x with results kept, 1.45-1.53x
-- without, 1.16-1.21x with 20 ms of server delay). "1.1" or "2"
-- (http_version) forces one for both; HTTP/2 is negotiated only where the
-- server offers it.
M.AUTO = { single = "1.1", batch = "1.1" }

function M.new(config)
  -- one share per client: its single handle and its multi handle use the
  -- same connections, DNS answers and TLS sessions (a reconnect resumes
  -- the session any of them made)
  local version = config.http_version or "auto"
  local settings = { ca_file = config.ca_file, insecure = config.insecure, proxy = config.proxy,
    share = core.share(), http_version = version == "auto" and M.AUTO.single or version }
  local batch = setmetatable({ http_version = version == "auto" and M.AUTO.batch or version },
    { __index = settings })
  return setmetatable({ handle = core.curl(settings), settings = settings, batch_settings = batch,
    name = "curl" }, M)
end

-- The multi handle create_many drives (made on first use, kept).
function M:multi()
  if not self.multi_handle then self.multi_handle = core.multi(self.batch_settings) end
  return self.multi_handle
end

-- A multi handle of its own for a batch started while another runs (from
-- a callback); the caller closes it.
function M:fresh_multi()
  return core.multi(self.batch_settings)
end

-- The C handle reads the request table's fields itself.
function M:request(req)
  return self.handle:request(req)
end

-- Raises, closing nothing, when called from inside one of the handle's own
-- requests (a sink): libcurl is mid-transfer on it.
function M:close()
  self.handle:close() -- first: the one that refuses
  if self.multi_handle then self.multi_handle:close() end
  self.settings.share:close() -- its cached connections close with it
end

return M
