/*
 * Internal: the canonical ABI of world `module` on wasm32 (hand-written; see
 * guest-sdk/rust/src/abi.rs, which this follows) and state shared by the SDK's sources.
 *
 * Layouts (offsets in bytes, little-endian, 32-bit pointers):
 * - string / list<T>: ptr u32 @0, len u32 @4 (size 8, align 4)
 * - arg: disc u8 @0 (0 inline, 1 object); inline ptr @8, len @12; object id u64 @8, size u64 @16
 *   (size 24, align 8)
 * - output: disc u8 @0 (0 bytes, 1 object); bytes ptr @8, len @12; object id u64 @8 (size 16, align 8)
 * - failure: code u8 @0, message string @4 (size 12, align 4)
 * - result<output, failure>: disc @0; ok output @8; err failure @8 (size 24, align 8)
 * - result<_, failure> and result<list<u8>, failure>: disc @0; payload @4 (size 16, align 4)
 * - result<u64, failure>: disc @0; ok u64 @8; err failure @8 (size 24, align 8)
 * - result<object-ref, failure>: disc @0; ok id @8, size @16; err failure @8 (size 24, align 8)
 * - module-info: sdk string @0, tasks list @8, actors list @16 (size 24, align 4)
 * - actor-class: name string @0, methods list @8 (size 16, align 4)
 */
#ifndef REEF_ABI_H
#define REEF_ABI_H

#include "abi_layout.h"
#include "reef.h"

#include <stdint.h>
#include <string.h>

#define REEF_HOST_MODULE "reef:runtime/host@0.2.0"
#define REEF_IMPORT(name) __attribute__((import_module(REEF_HOST_MODULE), import_name(name)))

/* The raw imports of interface reef:runtime/host@0.2.0 (canonical ABI, flattened). */
REEF_IMPORT("log") void reef_imp_log(int32_t level, const char *msg, size_t len);
REEF_IMPORT("report-panic") void reef_imp_report_panic(const char *msg, size_t len);
REEF_IMPORT("put") void reef_imp_put(const void *data, size_t len, void *ret);
REEF_IMPORT("object-size") void reef_imp_object_size(uint64_t id, void *ret);
REEF_IMPORT("get") void reef_imp_get(uint64_t id, void *ret);
REEF_IMPORT("map-view") void reef_imp_map_view(uint64_t id, void *buf, size_t len, void *ret);
REEF_IMPORT("release-view") void reef_imp_release_view(void *buf, size_t len);
REEF_IMPORT("submit")
void reef_imp_submit(const char *module, size_t module_len, const char *function,
                     size_t function_len, const void *args, size_t nargs, void *ret);
REEF_IMPORT("actor-create")
void reef_imp_actor_create(const char *module, size_t module_len, const char *klass,
                           size_t klass_len, const void *args, size_t nargs, int32_t name_is_some,
                           const char *name, size_t name_len, void *ret);
REEF_IMPORT("actor-lookup") void reef_imp_actor_lookup(const char *name, size_t len, void *ret);
REEF_IMPORT("actor-call")
void reef_imp_actor_call(uint64_t actor, const char *method, size_t method_len, const void *args,
                         size_t nargs, void *ret);

/* A return area large and aligned enough for every result in the interface. */
typedef struct reef_ret_area {
    _Alignas(REEF_RET_AREA_ALIGN) uint8_t b[REEF_RET_AREA_SIZE];
} reef_ret_area;

static inline uint32_t reef_ld32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static inline uint64_t reef_ld64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static inline void reef_st32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void reef_st64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* Shared between the SDK's sources. */

/* Records a GUEST_ERROR taken over from a malloc'd string (NULL: out of memory). */
void reef_set_error_owned(char *msg);
/* Records the failure record a host import wrote at `failure` (frees its message). */
void reef_set_error_host(const uint8_t *failure);
/* Registers a malloc'd pointer to free when the current call returns; false (and frees
 * it) if the registry cannot grow. */
bool reef_call_own(void *p);
/* Allocates memory owned by the current call. */
void *reef_call_alloc(size_t n);
/* Replaces bytes that are not valid UTF-8 with '?' (the host only accepts UTF-8 strings). */
void reef_utf8_sanitize(char *s, size_t len);
/* Reports a panic message to the host (sanitized, truncated) without trapping. */
void reef_report_panic_str(const char *msg);
/* Checks the NULL guard (low memory); traps with a report when it was written. */
void reef_check_null_guard(void);

#endif
