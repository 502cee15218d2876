-- LuaRocks build of truto: the C core (truto.core) and the Lua layer.
-- `luarocks make rockspec/truto-0.1.0-1.rockspec` from the repository root.
package = "truto"
version = "0.1.0-1"
source = { url = "git+file://." }
description = {
  summary = "Create groups through Truto's unified user-directory API",
  detailed = [[
    A C core (exact JSON and query encoding, libcurl transport) with a Lua
    layer: truto.new{...}, client.groups.create(body, query, options).
  ]],
  license = "MIT",
}
-- lua-cjson is needed at run time too; it is not listed because this
-- project installs it from Debian (lua-cjson), which LuaRocks cannot see.
dependencies = { "lua >= 5.1, < 5.5" }
external_dependencies = {
  CURL = { library = "curl" },
  HTTP_PARSER = { library = "http_parser" },
}
build = {
  type = "builtin",
  modules = {
    ["truto.core"] = {
      sources = {
        "csrc/compat.c",
        "csrc/core.c",
        "csrc/encode_json.c",
        "csrc/encode_query.c",
        "csrc/headers.c",
        "csrc/http_parse.c",
        "csrc/request.c",
        "csrc/strbuf.c",
        "csrc/transfer.c",
        "csrc/transport_curl.c",
        "csrc/transport_multi.c",
        "csrc/walk.c",
      },
      libraries = { "curl", "http_parser" },
      incdirs = { "$(CURL_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)" },
      defines = { "_POSIX_C_SOURCE=200809L" },
    },
    ["truto"] = "lua/truto.lua",
    ["truto.batch"] = "lua/truto/batch.lua",
    ["truto.cli.args"] = "lua/truto/cli/args.lua",
    ["truto.cli.input"] = "lua/truto/cli/input.lua",
    ["truto.cli.json"] = "lua/truto/cli/json.lua",
    ["truto.cli.results"] = "lua/truto/cli/results.lua",
    ["truto.cli.rows"] = "lua/truto/cli/rows.lua",
    ["truto.cli.sha256"] = "lua/truto/cli/sha256.lua",
    ["truto.cli.worker"] = "lua/truto/cli/worker.lua",
    ["truto.client"] = "lua/truto/client.lua",
    ["truto.errors"] = "lua/truto/errors.lua",
    ["truto.response"] = "lua/truto/response.lua",
    ["truto.retry"] = "lua/truto/retry.lua",
    ["truto.schema"] = "lua/truto/schema.lua",
    ["truto.transport.curl"] = "lua/truto/transport/curl.lua",
    ["truto.transport.ngx"] = "lua/truto/transport/ngx.lua",
    ["truto.transport.haproxy"] = "lua/truto/transport/haproxy.lua",
  },
  install = {
    bin = { ["truto-groups"] = "bin/truto-groups" },
  },
}
