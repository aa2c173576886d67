/* mpobj.h — reading a decoded msgpack object (msgpack-c): a map's value by
 * key, a string compared, an unsigned integer. otj-load's slower paths
 * (setup, errors, the approve replies) and test_rxparse's reference reading
 * both use these. */
#ifndef OTJ_LOAD_MPOBJ_H
#define OTJ_LOAD_MPOBJ_H

#include <msgpack.h>
#include <stdint.h>
#include <string.h>

/* The value under `key` in map `map`, or NULL (also when it is not a map). */
static inline const msgpack_object *mp_get(const msgpack_object *map, const char *key) {
  if (map->type != MSGPACK_OBJECT_MAP) return NULL;
  size_t kl = strlen(key);
  for (uint32_t i = 0; i < map->via.map.size; i++) {
    const msgpack_object_kv *kv = &map->via.map.ptr[i];
    if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == kl &&
        !memcmp(kv->key.via.str.ptr, key, kl))
      return &kv->val;
  }
  return NULL;
}

/* 1 when o is the string s. */
static inline int mp_is(const msgpack_object *o, const char *s) {
  size_t n = strlen(s);
  return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
         !memcmp(o->via.str.ptr, s, n);
}

/* o as an unsigned integer, 0 when it is none. */
static inline uint64_t mp_u64(const msgpack_object *o) {
  return o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? o->via.u64 : 0;
}

#endif
