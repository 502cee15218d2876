/*
 * core.c - luaopen_truto_core: the C half of `truto`. Wires the pieces
 * (request builder, answer JSON decoder, curl transport, HTTP response
 * parser for the nginx transport) into one module
 * and holds the two values JSON needs: null and the array marker.
 *
 * No C globals that change (libcurl's one-time init aside); per-instance
 * state lives in userdata.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>

#include "compat.h"
#include "answer.h"
#include "decode_json.h"
#include "hmac.h"
#include "http_parse.h"
#include "operation.h"
#include "signals.h"
#include "redis.h"
#include "transfer.h"
#include "transport_curl.h"
#include "utf8.h"

/* core.now() -> seconds on a monotonic clock (for elapsed and deadlines) */
static int core_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  return 1;
}

/* core.sleep(seconds): the default wait between retries outside nginx */
static int core_sleep(lua_State *L) {
  lua_Number s = luaL_checknumber(L, 1);
  struct timespec ts;
  if (s <= 0 || s != s) return 0;
  if (s > 86400) s = 86400;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (lua_Number)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
  return 0;
}

/* core.milliseconds(seconds) -> whole milliseconds: the one rounding rule
 * for every timeout and wait handed on in milliseconds (libcurl, nginx
 * cosockets, HAProxy): rounded up, so nothing ends sooner than asked; at
 * least 1 (0 means "no limit" to some); at most 2^31 - 1; NaN is 1. */
static int core_milliseconds(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)transfer_milliseconds((double)luaL_checknumber(L, 1)));
  return 1;
}

/* Random bytes for UUIDs, fetched from the kernel 4 KiB at a time (one
 * getrandom() per 255 keys instead of one per key). A forked child must
 * never hand out its parent's bytes (nginx forks workers from a master that
 * may have used the module): the page is marked MADV_WIPEONFORK, so a child
 * finds it zeroed — `filled` reads 0 — and refills. Where the kernel lacks
 * that, the pool checks getpid() on every key instead. Lives in an upvalue
 * userdata, not a C global. */
typedef struct random_page {
  unsigned filled;          /* nonzero once filled; 0 again in a forked child */
  size_t used;
  unsigned char bytes[4096 - 64];
} random_page;

typedef struct random_pool {
  random_page *page;        /* mmap'd, page-aligned */
  int wipes_on_fork;
  pid_t pid;                /* only read when !wipes_on_fork */
} random_pool;

static int fill_pool(random_pool *p) {
  size_t got = 0;
  random_page *pg = p->page;
  while (got < sizeof pg->bytes) {
    ssize_t n = getrandom(pg->bytes + got, sizeof pg->bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    got += (size_t)n;
  }
  pg->used = 0;
  pg->filled = 1;
  p->pid = getpid();
  return 0;
}

static int random_pool_gc(lua_State *L) {
  random_pool *p = (random_pool *)lua_touserdata(L, 1);
  if (p->page) munmap(p->page, sizeof *p->page);
  p->page = NULL;
  return 0;
}

static void push_random_pool(lua_State *L) {
  random_pool *p = (random_pool *)lua_newuserdatauv(L, sizeof *p, 0);
  void *mem;
  p->page = NULL;
  lua_newtable(L);
  lua_pushcfunction(L, random_pool_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  mem = mmap(NULL, sizeof(random_page), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) luaL_error(L, "mmap failed");
  p->page = (random_page *)mem;
  p->page->filled = 0;
#ifdef MADV_WIPEONFORK
  p->wipes_on_fork = madvise(mem, sizeof(random_page), MADV_WIPEONFORK) == 0;
#else
  p->wipes_on_fork = 0;
#endif
  p->pid = 0;
}

/* core.uuid4() -> a random (version 4) UUID, from the kernel's CSPRNG */
static int core_uuid4(lua_State *L) {
  random_pool *pool = (random_pool *)lua_touserdata(L, lua_upvalueindex(1));
  random_page *pg = pool->page;
  unsigned char b[16];
  char out[37];
  static const char hex[] = "0123456789abcdef";
  int i, j = 0;
  if (!pg->filled || pg->used + sizeof b > sizeof pg->bytes ||
      (!pool->wipes_on_fork && pool->pid != getpid())) {
    if (fill_pool(pool) < 0) return luaL_error(L, "getrandom failed");
  }
  memcpy(b, pg->bytes + pg->used, sizeof b);
  memset(pg->bytes + pg->used, 0, sizeof b); /* never hand out the same bytes twice */
  pg->used += sizeof b;
  b[6] = (unsigned char)((b[6] & 0x0F) | 0x40);
  b[8] = (unsigned char)((b[8] & 0x3F) | 0x80);
  for (i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[j++] = '-';
    out[j++] = hex[b[i] >> 4];
    out[j++] = hex[b[i] & 15];
  }
  lua_pushlstring(L, out, 36);
  return 1;
}

/* core.array(t) -> t, marked to encode as a JSON array (empty or not) */
static int core_array(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_setmetatable(L, 1);
  return 1;
}

int luaopen_truto_core(lua_State *L);

/* Keeps this library loaded for the life of the process, and libcurl and
 * libcrypto with it: Lua unloads C modules when a state closes, while
 * libcurl may still have a resolver thread, the TLS libraries exit-time
 * handlers, and LeakSanitizer records of their thread-local blocks (its
 * exit-time check crashed on the unmapped ones). */
static void pin_library(void) {
#if defined(RTLD_NODELETE) && defined(RTLD_NOLOAD)
  static const char anchor = 0; /* any address inside this library */
  Dl_info info;
  if (dladdr(&anchor, &info) != 0 && info.dli_fname != NULL)
    (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
#endif
}

int luaopen_truto_core(lua_State *L) {
  static const luaL_Reg plain[] = {
    { "now", core_now },
    { "sleep", core_sleep },
    { "milliseconds", core_milliseconds },
    { "curl", transport_curl_new },
    { "multi", transport_multi_new },
    { "share", transport_share_new },
    { "http_response", http_parse_new },
    { NULL, NULL }
  };
  static const luaL_Reg with_array_mt[] = {
    { "array", core_array },
    { NULL, NULL }
  };
  pin_library();
  transport_curl_open(L);
  transport_multi_open(L);
  http_parse_open(L);
  luaL_newlib(L, plain);
  hmac_open(L);              /* core.hmac_sha256, core.hmac_sha256_verify */
  answer_open(L);            /* core.rate_limit_fields */
  decode_json_open(L);       /* core.json_decode */
  signals_open(L);            /* core.signals */
  redis_open(L);             /* core.redis_connect */
  utf8_open(L);              /* core.utf8_check */

  /* the array marker's metatable, shared by truto.array and the encoders */
  lua_newtable(L);
  lua_pushliteral(L, "array");
  lua_setfield(L, -2, "__jsontype");
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "array_mt");

  lua_insert(L, -2);         /* array_mt below the module */
  operation_open(L);
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, with_array_mt, 1);
  lua_remove(L, -2);         /* array_mt */

  {
    push_random_pool(L);
    lua_pushcclosure(L, core_uuid4, 1);
    lua_setfield(L, -2, "uuid4");
  }
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
  lua_setfield(L, -2, "curl_version");
  return 1;
}
