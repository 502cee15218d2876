/*
 * fuzz_http.c - libFuzzer target: the nginx transport's response parser
 * (core.http_response, csrc/http_parse.c). The input is fed in pieces whose
 * sizes come from the input itself, then the peer "closes" (""); after
 * every feed the parser's accessors are called as the transport would. It
 * must give a phase or nil, message, code; never crash. The same pieces go
 * through the C API as the own exchange (csrc/exchange.c) uses it: the
 * final head kept, a limit per header line, the kept head then read as an
 * answer's headers table.
 */
#include <stdlib.h>

#include "answer.h"
#include "fuzz_common.h"
#include "http_parse.h"

/* The C API over the same pieces, as exchange.c feeds it. */
static void through_c_api(lua_State *L, int skip_body, const uint8_t *data, size_t size) {
  http_response r;
  size_t at = 0;
  int phase = HTTP_PHASE_HEAD;
  http_response_init(&r, skip_body, 1);
  r.max_line = 100 * 1024 - 2;
  for (;;) {
    size_t piece = at < size ? 1 + (data[at] % 64) : 0;
    if (piece > size - at) piece = size - at;
    phase = http_response_feed(&r, (const char *)data + at, piece);
    if (http_response_oom(&r)) abort();
    if (phase == HTTP_PHASE_FAILED && (r.code == NULL || r.error[0] == '\0')) abort();
    if (piece == 0 || phase == HTTP_PHASE_FAILED) break;
    at += piece;
  }
  if (phase == HTTP_PHASE_DONE) {
    if (r.status < 200 || r.status > 999) abort();
    answer_push_headers(L, r.head.data ? r.head.data : "", r.head.len);
    lua_getfield(L, -1, "content-length");
    lua_pop(L, 2);
    (void)http_response_reusable(&r);
  }
  http_response_reset(&r, skip_body);
  http_response_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = fuzz_state();
  int top = lua_gettop(L), parser, skip_body;
  size_t at = 0;
  if (size < 1) return 0;
  skip_body = data[0] & 1; /* as for answers to HEAD */
  lua_getglobal(L, "core");
  lua_getfield(L, -1, "http_response");
  lua_pushboolean(L, skip_body);
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
  through_c_api(L, skip_body, data, size);
  lua_settop(L, top);
  lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
