-- luacheck configuration: Lua 5.1-5.4 code; `ngx` exists inside nginx
-- (the mock, the ngx transport, the OpenResty example); specs use busted.
std = "max"
globals = { "ngx" }
max_line_length = 120
files["spec/"] = { std = "+busted" }
exclude_files = { "build/", "fuzz/corpus-*/" }
