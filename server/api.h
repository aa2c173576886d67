/*
 * api — the HTTP routes: /healthz, /metrics and /api/... (DESIGN §5).
 * Each handler reads a parsed http_req and answers it, now or later.
 */
#ifndef OTJ_API_H
#define OTJ_API_H

#include "http.h"

/* Routes the request and answers it (possibly later). */
void api_handle(http_req *r);

#endif
