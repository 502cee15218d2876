-- LuaRocks build of truto: the C core (truto.core) and the Lua layer.
-- `luarocks make rockspec/truto-0.1.0-1.rockspec` from the repository root.
package = "truto"
version = "0.1.0-1"
source = {
  url = "git+https://github.com/truto-lua/truto-lua.git",
  tag = "v0.1.0",
}
description = {
  summary = "Create groups through Truto's unified user-directory API",
  detailed = [[
    A C core (exact JSON and query encoding, libcurl transport) with a Lua
    layer: truto.new{...}, client.groups.create(body, query, options).
  ]],
  license = "MIT",
  homepage = "https://github.com/truto-lua/truto-lua",
}
-- No lua-cjson: every JSON the module reads or writes is the C core's own.
dependencies = { "lua >= 5.1, < 5.5" }
external_dependencies = {
  CURL = { library = "curl" },
  CRYPTO = { library = "crypto" },
  HIREDIS = { header = "hiredis/hiredis.h", library = "hiredis" },
}
build = {
  type = "builtin",
  modules = {
    ["truto.core"] = {
      sources = {
        "csrc/answer.c",
        "csrc/compat.c",
        "csrc/core.c",
        "csrc/decode_json.c",
        "csrc/encode_json.c",
        "csrc/encode_query.c",
        "csrc/exchange.c",
        "csrc/headers.c",
        "csrc/hmac.c",
        "csrc/http_parse.c",
        "csrc/operation.c",
        "csrc/redis.c",
        "csrc/signals.c",
        "csrc/strbuf.c",
        "csrc/transfer.c",
        "csrc/transport_curl.c",
        "csrc/transport_multi.c",
        "csrc/utf8.c",
        "csrc/walk.c",
      },
      libraries = { "curl", "crypto", "hiredis" },
      incdirs = { "$(CURL_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)" },
      defines = { "_POSIX_C_SOURCE=200809L" },
    },
    ["truto"] = "lua/truto.lua",
    ["truto.api"] = "lua/truto/api.lua",
    ["truto.batch"] = "lua/truto/batch.lua",
    ["truto.call"] = "lua/truto/call.lua",
    ["truto.cli.args"] = "lua/truto/cli/args.lua",
    ["truto.cli.input"] = "lua/truto/cli/input.lua",
    ["truto.cli.json"] = "lua/truto/cli/json.lua",
    ["truto.cli.results"] = "lua/truto/cli/results.lua",
    ["truto.cli.rows"] = "lua/truto/cli/rows.lua",
    ["truto.cli.commands"] = "lua/truto/cli/commands.lua",
    ["truto.cli.progress"] = "lua/truto/cli/progress.lua",
    ["truto.cli.sync"] = "lua/truto/cli/sync.lua",
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
  install = {
    bin = { ["truto-groups"] = "bin/truto-groups" },
  },
}
