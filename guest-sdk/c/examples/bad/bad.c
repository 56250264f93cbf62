/*
 * Misbehaving C guest: each task fails in a way the node must contain (the task fails
 * with a clear error, the node keeps serving).
 *
 *   null_write()          stores through a NULL pointer          -> GUEST_PANIC "store to null pointer"
 *   null_member_write()   stores to a field of a NULL struct     -> GUEST_PANIC "member access within null pointer"
 *   null_memset()         libc memset(NULL, ...) (not instrumented) -> GUEST_PANIC from the NULL guard
 *   oob_write()           stores beyond the end of linear memory -> GUEST_TRAP "out of bounds memory access"
 *   assert_false()        assert(1 + 1 == 3)                     -> GUEST_PANIC "assertion failed: ..."
 *   panic(msg: str)       reef_panic("%s", msg)                  -> GUEST_PANIC msg
 *   recurse()             unbounded recursion, 1 KiB frames      -> STACK_OVERFLOW (runs off address 0)
 */
#include <assert.h>
#include <reef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Hides a pointer's value from the optimiser, as a bug in real code would. */
static void *opaque(void *p) {
    __asm__ volatile("" : "+r"(p));
    return p;
}

static int null_write(const reef_args *args, reef_out *out) {
    int *p = opaque(NULL);
    printf("writing through %p", (void *)p); /* no newline: kept because the SDK flushes before trapping */
    *p = 42;
    return reef_return_u64(out, (uint64_t)*p);
}

struct point {
    int x, y;
};

static int null_member_write(const reef_args *args, reef_out *out) {
    struct point *p = opaque(NULL);
    p->y = 7;
    return reef_return_nil(out);
}

static int null_memset(const reef_args *args, reef_out *out) {
    memset(opaque(NULL), 0xAB, 64);
    return reef_return_nil(out);
}

static int oob_write(const reef_args *args, reef_out *out) {
    /* The last bytes of the 4 GiB wasm32 address space: far beyond linear memory. */
    volatile uint32_t *p = opaque((void *)(uintptr_t)0xFFFFFFF0u);
    *p = 1;
    return reef_return_nil(out);
}

static int assert_false(const reef_args *args, reef_out *out) {
    volatile int two = 2;
    assert(1 + 1 == two + 1);
    return reef_return_nil(out);
}

static int panic(const reef_args *args, reef_out *out) {
    const char *msg;
    REEF_TRY(reef_arg_str(args, 0, &msg, NULL));
    reef_panic("%s", msg);
}

/* Recursion with a 1 KiB frame per call; volatile keeps every frame alive. */
static uint64_t deeper(uint64_t depth) {
    volatile uint8_t frame[1024];
    frame[depth % 1024] = (uint8_t)depth;
    if (depth == UINT64_MAX)
        return 0;
    return deeper(depth + 1) + frame[depth % 1024];
}

static int recurse(const reef_args *args, reef_out *out) {
    return reef_return_u64(out, deeper(0));
}

static const reef_task tasks[] = {
    REEF_TASK(null_write), REEF_TASK(null_member_write), REEF_TASK(null_memset),
    REEF_TASK(oob_write),  REEF_TASK(assert_false),      REEF_TASK(panic),
    REEF_TASK(recurse),
};

REEF_MODULE_TASKS(tasks);
