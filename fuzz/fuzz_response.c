/*
 * fuzz_response.c - libFuzzer target: response handling. The input is cut
 * into a status code, a raw header block and a body; the header block goes
 * through response_headers_push (what the curl transports do with what
 * libcurl hands them: a plain table), then status,
 * headers and body through
 * truto.response.interpret for every response format, with and without an
 * idempotency key. It must give a value or an error table with a known
 * kind that, redacted as the client does, renders as one line without the
 * token; never crash. The headers table must be a plain table holding
 * only strings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

void response_headers_push(lua_State *L, const char *head, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const FORMATS[] = { "unified", "raw", "normalized", "stream" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = fuzz_state();
  static int ready = 0;
  int top = lua_gettop(L), status, f;
  size_t head_len, body_len;
  const char *head, *body;
  if (size < 4) return 0;
  if (!ready) {
    /* what the client does with every error: redact, then render */
    if (luaL_dostring(L, "local errors = require 'truto.errors'\n"
                         "function check_error(err)\n"
                         "  assert(errors.KINDS[err.kind], 'unknown kind')\n"
                         "  errors.redact(err, 'fuzz-token-secret')\n"
                         "  local line = tostring(err)\n"
                         "  assert(not line:find('[\\r\\n]'), 'more than one line')\n"
                         "  assert(not line:find('fuzz-token-secret', 1, true), 'the token shows')\n"
                         "end\n"
                         "function check_headers(h)\n"
                         "  assert(getmetatable(h) == nil, 'a metatable on the headers')\n"
                         "  for k, v in next, h do\n"
                         "    assert(type(k) == 'string' and type(v) == 'string', 'not a string')\n"
                         "    assert(k == k:lower(), 'a name not lower-cased')\n"
                         "  end\n"
                         "end")) {
      fprintf(stderr, "fuzz: %s\n", lua_tostring(L, -1));
      abort();
    }
    ready = 1;
  }
  status = 100 + (data[0] | (data[1] << 8)) % 500;
  head_len = data[2] | ((size_t)data[3] << 8);
  data += 4;
  size -= 4;
  if (head_len > size) head_len = size;
  head = (const char *)data;
  body = head + head_len;
  body_len = size - head_len;
  for (f = 0; f < 4; f++) {
    lua_getglobal(L, "response");
    lua_getfield(L, -1, "interpret");
    lua_pushinteger(L, status);
    response_headers_push(L, head, head_len);
    lua_pushvalue(L, -1);
    lua_insert(L, top + 1); /* kept below the call, for check_headers */
    lua_pushlstring(L, body, body_len);
    lua_pushstring(L, FORMATS[f]);
    lua_pushboolean(L, 0);
    lua_pushboolean(L, f & 1);
    lua_pushliteral(L, "fuzz-token-secret");
    if (lua_pcall(L, 7, 2, 0) != 0) {
      fprintf(stderr, "raised: %s\n", lua_tostring(L, -1));
      abort();
    }
    /* the headers first, as the client fills them before it redacts an
     * error: redaction may then rewrite a name that carries the token
     * ("[REDACTED]" is not lower case, and need not be) */
    lua_getglobal(L, "check_headers");
    lua_pushvalue(L, top + 1);
    if (lua_pcall(L, 1, 0, 0) != 0) {
      fprintf(stderr, "bad headers: %s\n", lua_tostring(L, -1));
      abort();
    }
    if (lua_isnil(L, -2)) {
      /* an error: a table whose kind is one of the documented ones, that
       * renders as one line without the token */
      lua_getfield(L, -1, "kind");
      if (!lua_isstring(L, -1)) abort();
      lua_pop(L, 1);
      lua_getglobal(L, "check_error");
      lua_pushvalue(L, -2);
      if (lua_pcall(L, 1, 0, 0) != 0) {
        fprintf(stderr, "bad error: %s\n", lua_tostring(L, -1));
        abort();
      }
    }
    lua_settop(L, top);
  }
  lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
