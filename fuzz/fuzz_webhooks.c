/*
 * fuzz_webhooks.c - libFuzzer target: truto.webhooks.verify on deliveries
 * made from fuzz bytes, through the C HMAC, the UTF-8 check, the strict
 * JSON decoder and the created_at parser. Input: a mode byte, a header
 * length byte, that many header bytes, then the body. An even mode signs
 * the body correctly (the header bytes are unused): verify must return an
 * event with string id and event, or a decode/stale error. An odd mode
 * sends the fuzzed header: verify must refuse with invalid_signature. It
 * must never raise, crash, or put the secret in an error.
 */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char CHECK[] =
  "local w = require 'truto.webhooks'\n"
  "local SECRET = 'fuzz-secret-6e17561c'\n"
  "return function(mode, header, body)\n"
  "  local signed = mode % 2 == 0\n"
  "  if signed then header = w.sign(SECRET, body) end\n"
  "  local ok, event, err = pcall(w.verify, SECRET, header, body,\n"
  "    { now = 1796163358, seen = function() return true end })\n"
  "  assert(ok, 'verify raised: ' .. tostring(event))\n"
  "  if event then\n"
  "    assert(signed, 'a forged delivery was accepted')\n"
  "    assert(type(event) == 'table' and type(event.id) == 'string' and event.id ~= ''\n"
  "      and type(event.event) == 'string', 'an event without id or event')\n"
  "    return\n"
  "  end\n"
  "  assert(type(err) == 'table' and type(err.message) == 'string', 'no error table')\n"
  "  if signed then\n"
  "    assert(err.kind == 'decode' or err.kind == 'stale', 'a signed body refused as ' .. err.kind)\n"
  "  else\n"
  "    assert(err.kind == 'invalid_signature', 'a forged header refused as ' .. err.kind)\n"
  "  end\n"
  "  assert(not tostring(err):find(SECRET, 1, true), 'the secret is in the error')\n"
  "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = fuzz_state();
  int top = lua_gettop(L);
  size_t header_len;
  if (size < 2) return 0;
  header_len = data[1];
  if (header_len > size - 2) header_len = size - 2;
  lua_getfield(L, LUA_REGISTRYINDEX, "fuzz_webhooks.check");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    if (luaL_dostring(L, CHECK)) {
      fprintf(stderr, "fuzz_webhooks: %s\n", lua_tostring(L, -1));
      abort();
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, "fuzz_webhooks.check");
  }
  lua_pushinteger(L, data[0]);
  lua_pushlstring(L, (const char *)data + 2, header_len);
  lua_pushlstring(L, (const char *)data + 2 + header_len, size - 2 - header_len);
  if (lua_pcall(L, 3, 0, 0) != 0) {
    fprintf(stderr, "fuzz_webhooks: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_settop(L, top);
  lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
