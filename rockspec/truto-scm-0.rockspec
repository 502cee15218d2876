-- LuaRocks build of truto, the library, from this checkout: the C core
-- (truto.core) and the Lua layer, for Lua 5.1-5.4 and LuaJIT. From the
-- repository root (--lua-version=5.1 etc. for another Lua):
--   luarocks make rockspec/truto-scm-0.rockspec
-- Then, on Lua 5.4, the command-line tool:
--   luarocks make rockspec/truto-groups-scm-0.rockspec
-- Lists what truto-0.1.0-1.rockspec lists (spec/packaging_spec.lua).
package = "truto"
version = "scm-0"
-- where the checkout will be published (not yet); `luarocks make` builds
-- the checkout it runs in and never fetches this
source = {
  url = "git+https://github.com/truto-lua/truto-lua.git",
  branch = "main",
}
description = {
  summary = "Create groups through Truto's unified user-directory API",
  detailed = [[
    A C core (exact JSON and query encoding, libcurl transport) with a Lua
    layer: truto.new{...}, client.groups.create(body, query, options). For
    Lua 5.1-5.4 and LuaJIT. The command-line tool is the truto-groups rock.
  ]],
  license = "MIT",
  homepage = "https://github.com/truto-lua/truto-lua",
}
-- No lua-cjson: every JSON the module reads or writes is the C core's own.
dependencies = { "lua >= 5.1, < 5.5" }
external_dependencies = {
  CURL = { library = "curl" },
  SSL = { library = "ssl" },
  CRYPTO = { library = "crypto" },
  HIREDIS = { header = "hiredis/hiredis.h", library = "hiredis" },
}
build = {
  type = "builtin",
  modules = {
    ["truto.core"] = {
      sources = {
        "csrc/class.c",
        "csrc/clock.c",
        "csrc/compat.c",
        "csrc/core.c",
        "csrc/decode_json.c",
        "csrc/encode_json.c",
        "csrc/encode_query.c",
        "csrc/encoder.c",
        "csrc/headers.c",
        "csrc/hmac.c",
        "csrc/http_parse.c",
        "csrc/json_markers.c",
        "csrc/operation.c",
        "csrc/random.c",
        "csrc/redis.c",
        "csrc/response_headers.c",
        "csrc/signals.c",
        "csrc/strbuf.c",
        "csrc/transfer.c",
        "csrc/transport_curl.c",
        "csrc/transport_multi.c",
        "csrc/utf8.c",
      },
      -- libm: ceil, floor and fabs (the compiler inlines some, not all)
      libraries = { "curl", "ssl", "crypto", "hiredis", "m" },
      incdirs = { "$(CURL_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)" },
      defines = { "_POSIX_C_SOURCE=200809L" },
    },
    ["truto"] = "lua/truto.lua",
    ["truto.api"] = "lua/truto/api.lua",
    ["truto.batch"] = "lua/truto/batch.lua",
    ["truto.call"] = "lua/truto/call.lua",
    ["truto.client"] = "lua/truto/client.lua",
    ["truto.errors"] = "lua/truto/errors.lua",
    ["truto.options"] = "lua/truto/options.lua",
    ["truto.pace"] = "lua/truto/pace.lua",
    ["truto.pace.redis"] = "lua/truto/pace/redis.lua",
    ["truto.pace.rule"] = "lua/truto/pace/rule.lua",
    ["truto.pages"] = "lua/truto/pages.lua",
    ["truto.response"] = "lua/truto/response.lua",
    ["truto.retry"] = "lua/truto/retry.lua",
    ["truto.schema"] = "lua/truto/schema.lua",
    ["truto.transport.curl"] = "lua/truto/transport/curl.lua",
    ["truto.transport.ngx"] = "lua/truto/transport/ngx.lua",
    ["truto.transport.haproxy"] = "lua/truto/transport/haproxy.lua",
    ["truto.time"] = "lua/truto/time.lua",
    ["truto.url"] = "lua/truto/url.lua",
    ["truto.webhooks"] = "lua/truto/webhooks.lua",
  },
}
