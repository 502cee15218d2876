/*
 * fuzz_http.c - libFuzzer target: the nginx transport's response parser
 * (core.http_response, csrc/http_parse.c). The input is fed in pieces whose
 * sizes come from the input itself, then the peer "closes" (""); after
 * every feed the parser's accessors are called as the transport would. It
 * must give a phase or nil, message, code; never crash.
 */
#include <stdlib.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = fuzz_state();
  int top = lua_gettop(L), parser;
  size_t at = 0;
  if (size < 1) return 0;
  lua_getglobal(L, "core");
  lua_getfield(L, -1, "http_response");
  lua_pushboolean(L, data[0] & 1); /* skip_body, as for answers to HEAD */
  if (lua_pcall(L, 1, 1, 0) != 0) abort();
  parser = lua_gettop(L);
  data++;
  size--;
  for (;;) {
    size_t piece = at < size ? 1 + (data[at] % 64) : 0;
    if (piece > size - at) piece = size - at;
    lua_getfield(L, parser, "feed");
    lua_pushvalue(L, parser);
    lua_pushlstring(L, (const char *)data + at, piece);
    if (lua_pcall(L, 2, 3, 0) != 0) abort();
    lua_pop(L, 3);
    {
      static const char *const readers[] = { "status", "content_length", "headers", "take", "keep_alive" };
      int i;
      for (i = 0; i < 5; i++) {
        lua_getfield(L, parser, readers[i]);
        lua_pushvalue(L, parser);
        if (lua_pcall(L, 1, 1, 0) != 0) abort();
        lua_pop(L, 1);
      }
    }
    if (piece == 0) break; /* the close was fed */
    at += piece;
  }
  lua_settop(L, top);
  lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
