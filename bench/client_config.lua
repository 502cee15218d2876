-- bench/client_config.lua: the configuration every benchmark row of this
-- module gives truto.new — the bench token and server, plus `extra` — with
-- pacing off where the client has it (rate_limits = false): the rows
-- measure the client's own cost on loopback, and Truto's documented limits
-- (50 per 10 s per account) would otherwise pace them to 5 calls/s. Trees
-- without the option (older builds run by bench/compare.lua) get none.
--   local config = dofile("bench/client_config.lua")(payload, { ... })
-- Must never: set any other option, or hide a failure of truto.new.
return function(payload, extra)
  -- over HTTPS (bench/https.lua): the bench CA, and a forced protocol
  local config = { token = payload.token, base_url = os.getenv("BENCH_BASE"),
    ca_file = os.getenv("BENCH_CA_FILE"), http_version = os.getenv("BENCH_HTTP_VERSION") }
  for k, v in pairs(extra or {}) do config[k] = v end
  local options = require("truto.client").OPTIONS
  if type(options) == "table" and options.rate_limits then config.rate_limits = false end
  return config
end
