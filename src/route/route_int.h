/*
 * route_int.h — what route.c shares with plan.c.  Private to src/route/.
 */
#ifndef BRG_ROUTE_ROUTE_INT_H
#define BRG_ROUTE_ROUTE_INT_H

#include "config/config.h"
#include "route/route.h"

/* The configuration given to router_set_config(), or NULL. */
const struct config *router_config(const struct router *r);

#endif
