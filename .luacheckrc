-- luacheck configuration: Lua 5.1-5.4 code; `ngx` exists inside nginx
-- (the mock, the ngx transport, the OpenResty example); specs use busted.
std = "max"
globals = { "ngx" }
max_line_length = 120
files["spec/"] = { std = "+busted" }
-- generated data (scripts/gen-build-cases): one case per line, whatever its length
files["spec/fixtures/"] = { max_line_length = false }
exclude_files = { "build/", "fuzz/corpus-*/" }
-- HAProxy's Lua API is the `core` global (the example and the spec's services)
files["examples/haproxy/"] = { read_globals = { "core" } }
files["spec/support/haproxy_services.lua"] = { std = "+busted", read_globals = { "core" } }
files["spec/support/pace_haproxy_service.lua"] = { std = "+busted", read_globals = { "core" } }
files["spec/fixtures/haproxy_calls.lua"] = { read_globals = { "core" }, max_line_length = false }
-- Neovim's API is the `vim` global; lsyncd's configuration functions are globals
files["examples/neovim/"] = { read_globals = { "vim" } }
files["examples/lsyncd/"] = { read_globals = { "settings", "sync", "spawn", "log" } }
