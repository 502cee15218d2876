/*
 * transport_multi.c - many requests at once on one libcurl multi handle
 * (create_many). Lua drives: add() starts a request, perform(wait, out)
 * moves every transfer on and hands back the ones that finished; retries, order
 * and backoff are decided in lua/truto/batch.lua. Easy handles are pooled
 * and keep their connections (shared with the client's single handle
 * through the share). No sinks here, so no Lua runs inside libcurl.
 */
#include <stdlib.h>
#include <string.h>

#include "transfer.h"
#include "transport_curl.h"

typedef struct slot {
  transfer t;
  lua_Integer id;
  int busy;
} slot;

typedef struct multi {
  CURLM *m;
  slot **slots;
  int nslots, cap, busy;
  int closed;
  int share_ref;   /* keeps the share alive */
  int config_ref;  /* the config table, for handles made later */
  CURLSH *sh;
} multi;

static multi *check_multi(lua_State *L) {
  multi *mu = (multi *)luaL_checkudata(L, 1, MULTI_TRANSPORT_MT);
  if (mu->closed) luaL_error(L, "attempt to use a closed truto client");
  return mu;
}

static slot *free_slot(lua_State *L, multi *mu) {
  int i;
  slot *s;
  for (i = 0; i < mu->nslots; i++)
    if (!mu->slots[i]->busy) return mu->slots[i];
  if (mu->nslots == mu->cap) {
    int cap = mu->cap ? mu->cap * 2 : 8;
    slot **grown = (slot **)realloc(mu->slots, (size_t)cap * sizeof *grown);
    if (grown == NULL) luaL_error(L, "out of memory");
    mu->slots = grown;
    mu->cap = cap;
  }
  s = (slot *)calloc(1, sizeof *s);
  if (s == NULL) luaL_error(L, "out of memory");
  lua_rawgeti(L, LUA_REGISTRYINDEX, mu->config_ref);
  if (transfer_init(&s->t, L, lua_gettop(L), mu->sh) < 0) {
    free(s);
    luaL_error(L, "curl_easy_init failed");
  }
  lua_pop(L, 1);
  mu->slots[mu->nslots++] = s;
  return s;
}

/*
 * multi:add(id, method, url, headers, body, timeout, connect_timeout,
 *           max_bytes, stall_timeout, nil, follow_redirects)
 * Starts one request; `id` comes back with its outcome from perform().
 */
static int multi_add(lua_State *L) {
  multi *mu = check_multi(L);
  lua_Integer id = luaL_checkinteger(L, 2);
  slot *s;
  lua_settop(L, 12);
  lua_pushnil(L);
  lua_replace(L, 11); /* no sinks in a batch */
  s = free_slot(L, mu);
  transfer_prepare(L, &s->t, 3);
  /* over TLS, wait to learn whether the first connection speaks HTTP/2 and
   * multiplex on it rather than opening one connection per transfer */
  curl_easy_setopt(s->t.easy, CURLOPT_PIPEWAIT, 1L);
  s->id = id;
  if (curl_multi_add_handle(mu->m, s->t.easy) != CURLM_OK) {
    return luaL_error(L, "curl_multi_add_handle failed");
  }
  s->busy = 1;
  mu->busy++;
  return 0;
}

/*
 * multi:perform(wait, out) -> n
 * Moves every transfer on, waiting up to `wait` seconds for activity when
 * none has finished yet, and writes the n transfers that finished into the
 * array `out` (the caller's, reused from call to call: no table per
 * transfer), six slots each from out[6k + 1]:
 *   id, status, headers, body, nil, nil            an answer
 *   id, nil, kind, message, sent, which_timeout     no answer
 * Slots past 6n keep what an earlier call left there.
 */
static int multi_perform(lua_State *L) {
  multi *mu = check_multi(L);
  lua_Number wait = luaL_optnumber(L, 2, 0);
  int running = 0, left = 0, n = 0, i;
  CURLMsg *msg;
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  for (i = 0; i < mu->nslots; i++) mu->slots[i]->t.L = L;
  curl_multi_perform(mu->m, &running);
  if (wait > 0 && running == mu->busy) {
    curl_multi_wait(mu->m, NULL, 0, (int)(wait * 1000), NULL);
    curl_multi_perform(mu->m, &running);
  }
  while ((msg = curl_multi_info_read(mu->m, &left)) != NULL) {
    slot *s = NULL;
    int k;
    lua_Integer base = (lua_Integer)n * 6;
    CURLcode rc;
    if (msg->msg != CURLMSG_DONE) continue;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
    rc = msg->data.result;
    curl_multi_remove_handle(mu->m, msg->easy_handle);
    lua_pushinteger(L, s->id);
    lua_rawseti(L, 3, base + 1);
    transfer_finish(L, &s->t, rc);
    lua_settop(L, 3 + 5); /* an answer's 3 values padded with nils */
    for (k = 5; k >= 1; k--) lua_rawseti(L, 3, base + 1 + k); /* pops the top */
    s->busy = 0;
    mu->busy--;
    n++;
  }
  for (i = 0; i < mu->nslots; i++) mu->slots[i]->t.L = NULL;
  lua_pushinteger(L, n);
  return 1;
}

/* multi:pending() -> number of requests still running */
static int multi_pending(lua_State *L) {
  multi *mu = check_multi(L);
  lua_pushinteger(L, mu->busy);
  return 1;
}

static int multi_close(lua_State *L) {
  multi *mu = (multi *)luaL_checkudata(L, 1, MULTI_TRANSPORT_MT);
  int i;
  if (mu->closed) return 0;
  mu->closed = 1;
  for (i = 0; i < mu->nslots; i++) {
    slot *s = mu->slots[i];
    if (s->busy) curl_multi_remove_handle(mu->m, s->t.easy);
    transfer_cleanup(&s->t);
    free(s);
  }
  free(mu->slots);
  mu->slots = NULL;
  mu->nslots = mu->cap = mu->busy = 0;
  if (mu->m) curl_multi_cleanup(mu->m);
  mu->m = NULL;
  luaL_unref(L, LUA_REGISTRYINDEX, mu->share_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, mu->config_ref);
  mu->share_ref = mu->config_ref = LUA_NOREF;
  return 0;
}

int transport_multi_new(lua_State *L) {
  multi *mu;
  int ref;
  lua_settop(L, 1);
  if (!lua_istable(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  mu = (multi *)lua_newuserdatauv(L, sizeof *mu, 0);
  memset(mu, 0, sizeof *mu);
  mu->closed = 1;
  mu->share_ref = mu->config_ref = LUA_NOREF;
  luaL_getmetatable(L, MULTI_TRANSPORT_MT);
  lua_setmetatable(L, -2);
  mu->m = curl_multi_init();
  if (mu->m == NULL) return luaL_error(L, "curl_multi_init failed");
  mu->closed = 0;
  mu->sh = transport_share_from(L, 1, &ref);
  mu->share_ref = ref;
  lua_pushvalue(L, 1);
  mu->config_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  /* reuse connections across requests; HTTP/2 multiplexing when offered */
  curl_multi_setopt(mu->m, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  return 1;
}

void transport_multi_open(lua_State *L) {
  static const luaL_Reg methods[] = {
    { "add", multi_add },
    { "perform", multi_perform },
    { "pending", multi_pending },
    { "close", multi_close },
    { NULL, NULL }
  };
  luaL_newmetatable(L, MULTI_TRANSPORT_MT);
  lua_pushcfunction(L, multi_close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, multi_close);
  lua_setfield(L, -2, "__close");
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}
