/*
 * log — otjd's log: one line per event on stderr, in logfmt.
 *
 *   ts=2026-12-03T09:41:07.123Z level=info msg="room opened" room=r5c1e module=2 host=14
 *
 * `ts` is UTC with milliseconds, `level` one of debug, info, warn, error,
 * `msg` says what happened in a few fixed words (grep for it), and the keys
 * after it carry the ids. The one design idea: the caller writes the keys
 * as a printf format ("room=%s module=%lld") and log_event quotes each
 * value the format produces where logfmt needs it (a space, '"', '=', a
 * control character, or nothing at all), so a value can never forge a key
 * or break the line. The compiler checks the format against the arguments.
 *
 * What is never logged: tokens, passwords, cookies, answers, notes. Ids
 * (session, user, room, module, completion) are what a line carries.
 */
#ifndef OTJ_LOG_H
#define OTJ_LOG_H

#include <stdint.h>

typedef enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

#define LOG_LINE_MAX 4096 /* bytes of one line; a longer value is cut ("...") */

/* Lines below `level` are dropped. The default is LOG_INFO. */
void log_set_level(log_level level);
log_level log_get_level(void);

/* 1 when a line of `level` would be written (to skip costly arguments). */
int log_enabled(log_level level);

/* The level named `name` (debug, info, warn, error; also warning). Returns
 * 0, or -1 when the name is none of them. */
int log_level_parse(const char *name, log_level *out);
const char *log_level_name(log_level level);

/* Writes one line: ts, level, msg, then `fmt` with its arguments, a
 * space-separated list of key=VALUE where each VALUE is one conversion
 * (%s, %d, %lld, %llu, %zu, %u, %x, %g, %.*s ...); literal text in a value
 * is taken as it is. `fmt` may be NULL or "" for no keys. Any thread. */
__attribute__((format(printf, 3, 4))) void log_event(log_level level, const char *msg,
                                                     const char *fmt, ...);

/* The loop thread may hold its debug and info lines and write them once per
 * loop turn (log_flush from the loop's check phase): at thousands of joins a
 * second a write per line was a tenth of otjd's CPU. Warnings and errors
 * are never held: they flush what is held and go at once, so the order of
 * lines stays the order of events. Between log_hold_begin and log_hold_end
 * (which flushes), on the calling thread only; other threads write as
 * before. A crash loses at most the held lines of one loop turn. */
void log_hold_begin(void);
void log_flush(void);
void log_hold_end(void);

/* Routes libwebsockets' own log through log_event (component=lws): errors
 * and warnings, and its notices at debug. Repeated lines are rate-limited
 * (lws can log an accept error in a tight loop when out of descriptors). */
void log_route_lws(void);

#endif
