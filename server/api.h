/*
 * api — the HTTP routes: /healthz, /metrics and /api/... (DESIGN §5).
 * Each handler reads a parsed http_req and answers it, now or later.
 */
#ifndef OTJ_API_H
#define OTJ_API_H

#include "http.h"

/* The name of the lws vhost of --metrics-listen: it answers /metrics,
 * /healthz and /readyz, and nothing else. */
#define API_METRICS_VHOST "otjd-metrics"

/* Routes the request and answers it (possibly later). */
void api_handle(http_req *r);

#endif
