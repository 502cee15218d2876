/*
 * json_scan.h - core.json_numbers_need_care (see json_scan.c).
 */
#ifndef TRUTO_JSON_SCAN_H
#define TRUTO_JSON_SCAN_H

#include "compat.h"

/* Sets json_numbers_need_care on the module table at the top of the stack. */
void json_scan_open(lua_State *L);

#endif
