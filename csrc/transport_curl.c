/*
 * transport_curl.c - the libcurl transports as Lua userdata:
 *   core.share()        connection, DNS and TLS-session caches one client's
 *                       handles share
 *   core.curl(config)   one keep-alive easy handle: request() blocks until
 *                       the answer (the default outside nginx)
 * The exchange itself (callbacks, outcome mapping) is in transfer.c; the
 * concurrent transport is transport_multi.c. Never used inside nginx: a
 * blocking perform would stall the worker.
 */
#include <string.h>

#include "class.h"
#include "transfer.h"
#include "transport_curl.h"

typedef struct share {
  CURLSH *sh;
} share;

typedef struct transport {
  transfer t;
  CURLM *multi;
  int closed;
  int busy;      /* inside request(): libcurl is mid-transfer on t, and a
                  * sink may run Lua that reaches this handle again */
  int share_ref; /* keeps the share alive while this handle uses it */
} transport;

/* ---- share ---- */

/* share:close(), also __gc: idempotent. The cached connections close with
 * it. Close (or collect) the handles using it first: libcurl refuses to
 * clean up a share still in use, and then it stays until one more close. */
static int share_gc(lua_State *L) {
  share *s = (share *)class_check(L, 1, SHARE_CLASS);
  if (s->sh && curl_share_cleanup(s->sh) == CURLSHE_OK) s->sh = NULL;
  return 0;
}

/* core.share() -> share (connection, DNS and TLS session caches) */
static int share_new(lua_State *L) {
  share *s = (share *)class_new(L, SHARE_CLASS, sizeof *s);
  s->sh = curl_share_init();
  if (s->sh == NULL) return luaL_error(L, "curl_share_init failed");
  curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
  return 1;
}

CURLSH *transport_share_from(lua_State *L, int config, int *ref) {
  share *s;
  *ref = LUA_NOREF;
  if (!lua_istable(L, config)) return NULL;
  lua_getfield(L, config, "share");
  s = (share *)class_test(L, -1, SHARE_CLASS);
  if (s == NULL || s->sh == NULL) {
    lua_pop(L, 1);
    return NULL;
  }
  *ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return s->sh;
}

/* ---- single requests ---- */

static transport *check_open(lua_State *L) {
  transport *t = (transport *)class_check(L, 1, CURL_TRANSPORT_CLASS);
  if (t->closed) luaL_error(L, "attempt to use a closed truto client");
  return t;
}

/* curl_easy_perform, on the handle's own multi: curl_multi_wait has no
 * wake-up socket pair to poll, so a request costs one poll() fewer. */
static CURLcode perform(transport *t) {
  CURLM *m = t->multi;
  CURLMsg *msg;
  int running = 1, left;
  CURLcode rc = CURLE_OK;
  if (m == NULL) return curl_easy_perform(t->t.easy);
  if (curl_multi_add_handle(m, t->t.easy) != CURLM_OK) return CURLE_FAILED_INIT;
  while (running) {
    if (curl_multi_perform(m, &running) != CURLM_OK) { rc = CURLE_FAILED_INIT; break; }
    if (running && curl_multi_wait(m, NULL, 0, 1000, NULL) != CURLM_OK) { rc = CURLE_FAILED_INIT; break; }
  }
  while ((msg = curl_multi_info_read(m, &left)) != NULL)
    if (msg->msg == CURLMSG_DONE) rc = msg->data.result;
  curl_multi_remove_handle(m, t->t.easy);
  return rc;
}

/*
 * transport:request(req) -> status, headers, body
 *                         | nil, kind, message, sent, which_timeout
 * req: { method, url, headers, body, timeout, connect_timeout,
 * max_response_bytes, stall_timeout, sink, follow_redirects } (README
 * "What request receives"; transfer.h). With a sink, a 2xx body goes to
 * sink(chunk) and body is "". Raises what the sink raised, and when called
 * again from inside its own sink (the handle is mid-transfer: that would
 * reset the running request).
 */
static int transport_request(lua_State *L) {
  transport *t = check_open(L);
  CURLcode rc;
  if (t->busy)
    return luaL_error(L, "cannot use a truto client inside one of its own calls "
                         "(from its sink): use another client");
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  transfer_prepare(L, &t->t, 2, 1);
  t->t.L = L;
  t->busy = 1;
  rc = perform(t);
  t->busy = 0;
  return transfer_finish(L, &t->t, rc);
}

/* transport:close(), also __gc and __close: idempotent. Raises when called
 * from inside one of the handle's own requests (a sink), where freeing the
 * handle would pull it from under libcurl. */
static int transport_close(lua_State *L) {
  transport *t = (transport *)class_check(L, 1, CURL_TRANSPORT_CLASS);
  if (t->busy)
    return luaL_error(L, "cannot close a truto client during one of its own calls "
                         "(from its sink): close it after the call returns");
  if (!t->closed) {
    t->closed = 1;
    transfer_cleanup(&t->t);
    if (t->multi) curl_multi_cleanup(t->multi);
    t->multi = NULL;
    luaL_unref(L, LUA_REGISTRYINDEX, t->share_ref);
    t->share_ref = LUA_NOREF;
  }
  return 0;
}

static int transport_tostring(lua_State *L) {
  transport *t = (transport *)class_check(L, 1, CURL_TRANSPORT_CLASS);
  lua_pushfstring(L, "truto.curl (%s)", t->closed ? "closed" : "open");
  return 1;
}

/* core.curl{ ca_file=, insecure=, proxy=, share= } -> transport */
static int transport_curl_new(lua_State *L) {
  transport *t;
  CURLSH *sh;
  int ref;
  lua_settop(L, 1);
  t = (transport *)class_new(L, CURL_TRANSPORT_CLASS, sizeof *t);
  t->closed = 1;
  t->share_ref = LUA_NOREF;
  sh = transport_share_from(L, 1, &ref);
  t->share_ref = ref;
  if (transfer_init(&t->t, L, 1, sh) < 0) return luaL_error(L, "curl_easy_init failed");
  t->multi = curl_multi_init();
  t->closed = 0;
  return 1;
}

void transport_curl_open(lua_State *L) {
  static const luaL_Reg share_methods[] = {
    { "close", share_gc },
    { NULL, NULL }
  };
  static const luaL_Reg share_meta[] = {
    { "__gc", share_gc },
    { NULL, NULL }
  };
  static const luaL_Reg methods[] = {
    { "request", transport_request },
    { "close", transport_close },
    { NULL, NULL }
  };
  static const luaL_Reg meta[] = {
    { "__gc", transport_close },
    { "__close", transport_close },
    { "__tostring", transport_tostring },
    { NULL, NULL }
  };
  static const luaL_Reg functions[] = {
    { "share", share_new },
    { "curl", transport_curl_new },
    { NULL, NULL }
  };
  transfer_global_init(L);
  class_register(L, SHARE_CLASS, share_methods, share_meta);
  class_register(L, CURL_TRANSPORT_CLASS, methods, meta);
  luaL_setfuncs(L, functions, 0);
}
