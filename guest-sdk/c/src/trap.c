/*
 * Panics and traps: reef_panic, assert() and abort() report their message to the host
 * (host `report-panic`, so the task fails with GUEST_PANIC and that text) and then trap.
 *
 * NULL pointers. In wasm, address 0 is ordinary linear memory: a write through a NULL
 * pointer does not fault by itself. The SDK catches such writes two ways:
 *   1. build.sh compiles with -fsanitize=null (and bounds): the compiler checks every
 *      pointer before a load or store and calls the handlers below, which report
 *      "store to null pointer ... (at file:line:col)" and trap at the faulting line.
 *   2. Code not compiled that way (libc's memset/memcpy, objects built by hand) is
 *      caught after the fact: modules are linked with --stack-first, so the lowest
 *      1 KiB of memory is the far end of the stack, which no call normally reaches.
 *      Every export checks that it is still zero when the call returns and traps
 *      with a report if it is not.
 * A pointer beyond the end of linear memory traps by itself (out-of-bounds access).
 */
#include "abi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void reef_report_panic_str(const char *msg) {
    char buf[1024];
    size_t n = strlen(msg);
    if (n >= sizeof buf)
        n = sizeof buf - 1;
    memcpy(buf, msg, n);
    buf[n] = '\0';
    reef_utf8_sanitize(buf, n);
    reef_imp_report_panic(buf, n);
}

/* wasi-libc's stdio flush (weak: links no stdio into modules that do not use it). */
extern void __stdio_exit(void) __attribute__((weak));

REEF_NORETURN static void panic_str(const char *msg) {
    reef_report_panic_str(msg);
    /* What the task printed before it failed is often what explains the failure. */
    if (__stdio_exit)
        __stdio_exit();
    __builtin_trap();
}

void reef_panic(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    panic_str(buf);
}

/* assert(): replaces wasi-libc's, which prints to stderr and aborts without a message. */
_Noreturn void __assert_fail(const char *expr, const char *file, int line, const char *func) {
    reef_panic("assertion failed: %s (at %s:%d in %s)", expr, file, line, func);
}

/* abort(): replaces wasi-libc's, which traps without a message. */
_Noreturn void abort(void) { panic_str("abort() called"); }

/* ------------------------------------------------------------------ UBSan handlers */

/* The data clang passes to the handlers (compiler-rt's ubsan_handlers.h). */
struct ubsan_loc {
    const char *file;
    uint32_t line;
    uint32_t column;
};

struct ubsan_type {
    uint16_t kind; /* 0 integer, 1 float, 0xffff unknown */
    uint16_t info; /* integers: (log2(bit width) << 1) | signed */
    char name[1];
};

struct ubsan_type_mismatch {
    struct ubsan_loc loc;
    const struct ubsan_type *type;
    unsigned char log_alignment;
    unsigned char check_kind;
};

struct ubsan_out_of_bounds {
    struct ubsan_loc loc;
    const struct ubsan_type *array_type;
    const struct ubsan_type *index_type;
};

static const char *const check_kinds[] = {
    "load of",           "store to",           "reference binding to", "member access within",
    "member call on",    "constructor call on", "downcast of",         "downcast of",
    "upcast of",         "cast to virtual base of", "_Nonnull binding to", "dynamic operation on",
};

REEF_NORETURN static void type_mismatch(struct ubsan_type_mismatch *d, uintptr_t ptr) {
    const char *kind =
        d->check_kind < sizeof check_kinds / sizeof check_kinds[0] ? check_kinds[d->check_kind] : "access to";
    uintptr_t align = (uintptr_t)1 << d->log_alignment;
    if (ptr == 0)
        reef_panic("null pointer: %s null pointer of type %s (at %s:%u:%u)", kind, d->type->name,
                   d->loc.file, d->loc.line, d->loc.column);
    else if (align && (ptr & (align - 1)))
        reef_panic("misaligned pointer: %s address 0x%lx, which needs %lu-byte alignment for type "
                   "'%s' (at %s:%u:%u)",
                   kind, (unsigned long)ptr, (unsigned long)align, d->type->name, d->loc.file,
                   d->loc.line, d->loc.column);
    else
        reef_panic("%s address 0x%lx with insufficient space for type %s (at %s:%u:%u)", kind,
                   (unsigned long)ptr, d->type->name, d->loc.file, d->loc.line, d->loc.column);
}

void __ubsan_handle_type_mismatch_v1(struct ubsan_type_mismatch *d, uintptr_t ptr) {
    type_mismatch(d, ptr);
}
void __ubsan_handle_type_mismatch_v1_abort(struct ubsan_type_mismatch *d, uintptr_t ptr) {
    type_mismatch(d, ptr);
}

/* An integer argument: inline in the handle when it fits a pointer, else behind it. */
static long long ubsan_int(const struct ubsan_type *t, uintptr_t v) {
    unsigned bits = 1u << (t->info >> 1);
    bool is_signed = t->info & 1;
    if (t->kind != 0)
        return (long long)v;
    if (bits <= sizeof(uintptr_t) * 8) {
        if (is_signed && bits < 64) {
            unsigned shift = 64 - bits;
            return (long long)((uint64_t)v << shift) >> shift;
        }
        return (long long)v;
    }
    return *(const long long *)v;
}

REEF_NORETURN static void out_of_bounds(struct ubsan_out_of_bounds *d, uintptr_t index) {
    reef_panic("index %lld out of bounds for type %s (at %s:%u:%u)",
               ubsan_int(d->index_type, index), d->array_type->name, d->loc.file, d->loc.line,
               d->loc.column);
}

void __ubsan_handle_out_of_bounds(struct ubsan_out_of_bounds *d, uintptr_t index) {
    out_of_bounds(d, index);
}
void __ubsan_handle_out_of_bounds_abort(struct ubsan_out_of_bounds *d, uintptr_t index) {
    out_of_bounds(d, index);
}

/* ------------------------------------------------------------------ the NULL guard */

#define NULL_GUARD_BYTES 1024

/* Volatile so that the compiler cannot see that the guard starts at address 0. */
static volatile uintptr_t g_guard_base = 0;

__attribute__((no_sanitize("null", "alignment", "bounds"))) void reef_check_null_guard(void) {
    const volatile uint32_t *p = (const volatile uint32_t *)g_guard_base;
    for (size_t k = 0; k < NULL_GUARD_BYTES / 4; k++) {
        if (p[k] != 0) {
            reef_panic("memory at address 0x%zx was written: a write through a NULL pointer "
                       "(or the stack came within %d bytes of overflowing)",
                       k * 4, NULL_GUARD_BYTES);
        }
    }
}
