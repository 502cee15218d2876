/*
 * clock.c - core.now and core.sleep (see clock.h). Must never read the
 * wall clock, and never sleep inside nginx: the Lua layer picks
 * ngx.sleep there.
 */
#include <errno.h>
#include <time.h>

#include "clock.h"

double clock_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* core.now() -> seconds on a monotonic clock (for elapsed and deadlines) */
static int core_now(lua_State *L) {
  lua_pushnumber(L, (lua_Number)clock_now());
  return 1;
}

/* core.sleep(seconds): the default wait between retries outside nginx.
 * Nothing for 0, negative or NaN; at most a day; resumes after signals. */
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

void clock_open(lua_State *L) {
  static const luaL_Reg functions[] = {
    { "now", core_now },
    { "sleep", core_sleep },
    { NULL, NULL }
  };
  luaL_setfuncs(L, functions, 0);
}
