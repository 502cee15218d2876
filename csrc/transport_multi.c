/*
 * transport_multi.c - many requests at once on one libcurl multi handle
 * (create_many). Lua drives: add() starts a request, perform(wait, out)
 * moves every transfer on and hands back the ones that finished; retries, order
 * and backoff are decided in lua/truto/batch.lua. Easy handles are pooled
 * and keep their connections (shared with the client's single handle
 * through the share). No sinks here, so no Lua runs inside libcurl.
 *
 * libcurl is driven with curl_multi_perform and curl_multi_wait, as
 * Lua-cURLv3 drives it, not through its socket interface
 * (curl_multi_socket_action): libcurl 7.88's HTTP/2 code, driven socket
 * by socket, lost answers — a transfer whose answer another transfer's
 * read had buffered was run to send the rest of its body, found its
 * stream already closed (the server answered before reading the body) and
 * ended with CURLE_HTTP2_STREAM, the server's 201 never read: a delivered
 * create reported failed and retried (spec/https_batch_spec.lua). Every
 * turn runs every transfer, so each reads what is buffered for it.
 * stall_timeout is also checked here, between turns.
 */
#include <stdlib.h>
#include <string.h>

#include "class.h"
#include "clock.h"
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
  multi *mu = (multi *)class_check(L, 1, MULTI_TRANSPORT_CLASS);
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
 * multi:add(id, req)
 * Starts one request; `id` (an integer) comes back with its outcome from
 * perform(). req as for transport:request (transfer.h), except that
 * req.sink is not read: no sinks in a batch, so no Lua runs inside
 * libcurl here.
 */
static int multi_add(lua_State *L) {
  multi *mu = check_multi(L);
  lua_Integer id = luaL_checkinteger(L, 2);
  const char *url;
  slot *s;
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  s = free_slot(L, mu);
  transfer_prepare(L, &s->t, 3, 0);
  /* over TLS, wait to learn whether the first connection speaks HTTP/2 and
   * multiplex on it rather than opening one connection per transfer (its
   * handshake says so); on HTTP/1.1 (the server's choice or http_version)
   * the connections opened next resume the first one's TLS session instead
   * of each making a full handshake at once. Plain http never multiplexes
   * here: waiting would hold every transfer back until the first answer is
   * in. */
  lua_getfield(L, 3, "url");
  url = lua_tostring(L, -1);
  curl_easy_setopt(s->t.easy, CURLOPT_PIPEWAIT, url != NULL && strncmp(url, "https:", 6) == 0 ? 1L : 0L);
  lua_pop(L, 1);
  s->id = id;
  if (curl_multi_add_handle(mu->m, s->t.easy) != CURLM_OK) {
    return luaL_error(L, "curl_multi_add_handle failed");
  }
  s->busy = 1;
  mu->busy++;
  return 0;
}

/* Writes one finished transfer into `out` (six slots from 6n + 1). */
static void emit(lua_State *L, multi *mu, slot *s, CURLcode rc, int n) {
  lua_Integer base = (lua_Integer)n * 6;
  int k;
  curl_multi_remove_handle(mu->m, s->t.easy);
  lua_pushinteger(L, s->id);
  lua_rawseti(L, 3, base + 1);
  transfer_finish(L, &s->t, rc);
  lua_settop(L, 3 + 5); /* an answer's 3 values padded with nils */
  for (k = 5; k >= 1; k--) lua_rawseti(L, 3, base + 1 + k); /* pops the top */
  s->busy = 0;
  mu->busy--;
}

/* The transfers libcurl says are done, into `out` after the n already there. */
static int collect(lua_State *L, multi *mu, int n) {
  CURLMsg *msg;
  int left = 0;
  while ((msg = curl_multi_info_read(mu->m, &left)) != NULL) {
    slot *s = NULL;
    if (msg->msg != CURLMSG_DONE) continue;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
    emit(L, mu, s, msg->data.result, n++);
  }
  return n;
}

/* Ends the transfers idle past their stall_timeout as libcurl would when
 * the progress callback stops them, without waiting for its next call.
 * Returns the new n; *next: the earliest time a
 * running one would stall (or left as it was). */
static int stalls(lua_State *L, multi *mu, int n, double now, double *next) {
  int i;
  for (i = 0; i < mu->nslots; i++) {
    slot *s = mu->slots[i];
    transfer *t = &s->t;
    double due;
    if (!s->busy || !(t->stall_timeout > 0)) continue;
    due = t->last_move + t->stall_timeout;
    if (now > due) {
      t->stalled = 1;
      emit(L, mu, s, CURLE_ABORTED_BY_CALLBACK, n++);
    } else if (due < *next) {
      *next = due;
    }
  }
  return n;
}

/*
 * multi:perform(wait, out) -> n
 * Moves every transfer on, waiting up to `wait` seconds for one to finish
 * when none has yet, and writes the n transfers that finished into the
 * array `out` (the caller's, reused from call to call: no table per
 * transfer), six slots each from out[6k + 1]:
 *   id, status, headers, body, nil, nil            an answer
 *   id, nil, kind, message, sent, which_timeout     no answer
 * Slots past 6n keep what an earlier call left there.
 */
static int multi_perform(lua_State *L) {
  multi *mu = check_multi(L);
  lua_Number wait = luaL_optnumber(L, 2, 0);
  double now = clock_now(), deadline;
  int n = 0, i;
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  if (!(wait >= 0)) wait = 0;
  if (wait > 86400) wait = 86400;
  deadline = now + wait;
  for (i = 0; i < mu->nslots; i++) mu->slots[i]->t.L = L;
  for (;;) {
    double until = deadline;
    int running, timeout_ms;
    CURLMcode rc = curl_multi_perform(mu->m, &running);
    n = collect(L, mu, n);
    n = stalls(L, mu, n, now, &until);
    if (n > 0 || mu->busy == 0 || now >= deadline || rc != CURLM_OK) break;
    timeout_ms = until <= now ? 0 : (int)clock_milliseconds(until - now); /* the one rounding rule */
    /* an interrupted wait (a signal: a stop request, say) goes back to Lua */
    if (curl_multi_wait(mu->m, NULL, 0, timeout_ms, NULL) != CURLM_OK) {
      curl_multi_perform(mu->m, &running);
      n = collect(L, mu, n);
      break;
    }
    now = clock_now();
  }
  for (i = 0; i < mu->nslots; i++) mu->slots[i]->t.L = NULL;
  lua_pushinteger(L, n);
  return 1;
}

static int multi_close(lua_State *L) {
  multi *mu = (multi *)class_check(L, 1, MULTI_TRANSPORT_CLASS);
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

/* core.multi{ ca_file=, insecure=, proxy=, share= } -> multi */
static int transport_multi_new(lua_State *L) {
  multi *mu;
  int ref;
  lua_settop(L, 1);
  if (!lua_istable(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  mu = (multi *)class_new(L, MULTI_TRANSPORT_CLASS, sizeof *mu);
  mu->closed = 1;
  mu->share_ref = mu->config_ref = LUA_NOREF;
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
    { "close", multi_close },
    { NULL, NULL }
  };
  static const luaL_Reg meta[] = {
    { "__gc", multi_close },
    { "__close", multi_close },
    { NULL, NULL }
  };
  class_register(L, MULTI_TRANSPORT_CLASS, methods, meta);
  lua_pushcfunction(L, transport_multi_new);
  lua_setfield(L, -2, "multi");
}
