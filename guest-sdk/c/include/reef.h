/*
 * reef.h: the C (and C++) guest SDK of Reef.
 *
 * A guest module is a core wasm32-wasi reactor module built with build.sh; the node
 * turns it into a component when it is registered. It exports tasks (functions run in a
 * fresh instance each) and actor classes (state in one long-lived instance):
 *
 *     #include <reef.h>
 *
 *     static int add(const reef_args *args, reef_out *out) {
 *         double a, b;
 *         REEF_TRY(reef_arg_f64(args, 0, &a));
 *         REEF_TRY(reef_arg_f64(args, 1, &b));
 *         return reef_return_f64(out, a + b);
 *     }
 *
 *     static const reef_task tasks[] = { REEF_TASK(add) };
 *     REEF_MODULE_TASKS(tasks);
 *
 * Conventions:
 *   - Functions that can fail return `bool` (true on success). On failure they record an
 *     error: a code and a message (read them with reef_error_code() and reef_error()); a
 *     task or method that then returns REEF_ERR fails with that code and message.
 *     REEF_TRY(expr) returns REEF_ERR when expr is false.
 *   - Structured values are MessagePack (docs/encoding.md). Argument accessors decode
 *     inline arguments and object arguments alike; raw bytes are passed as they are.
 *   - Memory the SDK hands out while a call runs (copied object bytes, strings decoded
 *     from arguments) belongs to the call and is freed when the task or method returns,
 *     unless a function says the caller frees it.
 *   - reef_fail(...) records the code REEF_CODE_GUEST_ERROR; reef_fail_code(code, ...)
 *     another (the SDK's argument errors are REEF_CODE_BAD_ARGUMENT). Errors of host
 *     functions keep the host's code (e.g. REEF_CODE_NAME_TAKEN).
 *   - Traps: abort(), assert(), reef_panic(), a write through a NULL pointer (when built
 *     with build.sh, which compiles with -fsanitize=null) and an access outside linear
 *     memory trap the instance; the task fails and the node keeps running.
 */
#ifndef REEF_H
#define REEF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define REEF_EXTERN_C extern "C"
extern "C" {
#else
#define REEF_EXTERN_C
#endif

#define REEF_SDK_VERSION "reef-guest-c/0.1.0"

#if defined(__GNUC__) || defined(__clang__)
#define REEF_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define REEF_NORETURN __attribute__((noreturn))
#define REEF_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define REEF_PRINTF(f, a)
#define REEF_NORETURN
#define REEF_WARN_UNUSED
#endif

/* ------------------------------------------------------------------ status */

/* What tasks, methods and constructors return. */
#define REEF_OK 0
#define REEF_ERR (-1)

/* Returns REEF_ERR from the enclosing function when `expr` is false. */
#define REEF_TRY(expr)        \
    do {                      \
        if (!(expr))          \
            return REEF_ERR;  \
    } while (0)

/* The error codes of reef:runtime (the WIT enum `code`, which is the driver API's
 * ErrorCode): X(NAME, "wit-name") in the order of their canonical-ABI discriminant. */
#define REEF_CODES(X) \
    X(INVALID_MODULE, "invalid-module") \
    X(UNKNOWN_MODULE, "unknown-module") \
    X(UNKNOWN_FUNCTION, "unknown-function") \
    X(BAD_ARGUMENT, "bad-argument") \
    X(UNKNOWN_OBJECT, "unknown-object") \
    X(GUEST_TRAP, "guest-trap") \
    X(GUEST_PANIC, "guest-panic") \
    X(GUEST_ERROR, "guest-error") \
    X(MEMORY_LIMIT, "memory-limit") \
    X(CPU_TIME_LIMIT, "cpu-time-limit") \
    X(STACK_OVERFLOW, "stack-overflow") \
    X(CANCELLED, "cancelled") \
    X(TIMEOUT, "timeout") \
    X(STORE_FULL, "store-full") \
    X(INFEASIBLE, "infeasible") \
    X(DEPENDENCY_FAILED, "dependency-failed") \
    X(UNKNOWN_ACTOR, "unknown-actor") \
    X(ACTOR_DEAD, "actor-dead") \
    X(NAME_TAKEN, "name-taken") \
    X(NODE_STOPPING, "node-stopping") \
    X(OWNER_DIED, "owner-died") \
    X(VIEW_ERROR, "view-error") \
    X(INTERNAL, "internal") \
    X(UNAUTHENTICATED, "unauthenticated") \
    X(NODE_DIED, "node-died") \
    X(UNKNOWN_NODE, "unknown-node") \
    X(UNKNOWN_PLACEMENT_GROUP, "unknown-placement-group") \
    X(OBJECT_LOST, "object-lost") \
    X(NOT_GRANTED, "not-granted") \
    X(PLACEMENT_GROUP_REMOVED, "placement-group-removed") \

/* An error code: REEF_CODE_BAD_ARGUMENT, REEF_CODE_GUEST_ERROR, ... */
typedef enum reef_code {
#define REEF_CODE_ENUM_(name, wit) REEF_CODE_##name,
    REEF_CODES(REEF_CODE_ENUM_)
#undef REEF_CODE_ENUM_
    REEF_CODE_COUNT_
} reef_code;

/* Records an error with code REEF_CODE_GUEST_ERROR and a message (printf format), and
 * returns REEF_ERR. */
int reef_fail(const char *fmt, ...) REEF_PRINTF(1, 2);
int reef_vfail(const char *fmt, va_list ap);

/* Records an error with `code` and returns REEF_ERR:
 *     if (n == 0) return reef_fail_code(REEF_CODE_BAD_ARGUMENT, "n must be positive"); */
int reef_fail_code(reef_code code, const char *fmt, ...) REEF_PRINTF(2, 3);
int reef_vfail_code(reef_code code, const char *fmt, va_list ap);

/* The current error message ("" if none). Valid until the next error or the end of the call. */
const char *reef_error(void);

/* The current error's code (REEF_CODE_GUEST_ERROR if none was set). */
reef_code reef_error_code(void);

/* The driver's name of a code, e.g. "BAD_ARGUMENT" ("INTERNAL" for a value out of range). */
const char *reef_code_name(reef_code code);

/* Clears the current error message. */
void reef_clear_error(void);

/* Reports `message` to the host (it becomes the task's GUEST_PANIC error) and traps. */
REEF_NORETURN void reef_panic(const char *fmt, ...) REEF_PRINTF(1, 2);

/* ------------------------------------------------------------------ objects */

/* The id of an object in the node's object store. */
typedef uint64_t reef_object_id;

/* An object: its id and its size in bytes. */
typedef struct reef_object {
    reef_object_id id;
    uint64_t size;
} reef_object;

/* ------------------------------------------------------------------ MessagePack */

/* Types of MessagePack values. Integers read as REEF_MP_UINT when >= 0, else REEF_MP_INT. */
typedef enum reef_mp_type {
    REEF_MP_NIL,
    REEF_MP_BOOL,
    REEF_MP_UINT,
    REEF_MP_INT,
    REEF_MP_FLOAT,
    REEF_MP_STR,
    REEF_MP_BIN,
    REEF_MP_ARRAY,
    REEF_MP_MAP,
    REEF_MP_EXT
} reef_mp_type;

/* One decoded MessagePack item. Containers give their element count (a map's is its
 * number of key/value pairs); their elements follow in the reader. str/bin/ext point
 * into the reader's buffer (not NUL-terminated). */
typedef struct reef_mp_value {
    reef_mp_type type;
    union {
        bool b;
        uint64_t u;
        int64_t i;
        double f;
        struct {
            const char *ptr;
            uint32_t len;
        } str;
        struct {
            const uint8_t *ptr;
            uint32_t len;
            int8_t ext_type;
        } bin;
        uint32_t count;
    } v;
} reef_mp_value;

/* A MessagePack reader over a byte buffer (which must outlive it). */
typedef struct reef_reader {
    const uint8_t *pos;
    const uint8_t *end;
} reef_reader;

void reef_reader_init(reef_reader *r, const void *data, size_t len);
/* Reads the next item (a container's header only). False and an error at the end of the
 * buffer or on malformed input. */
bool reef_read(reef_reader *r, reef_mp_value *out);
/* Skips the next item, containers with all their elements. */
bool reef_read_skip(reef_reader *r);
/* Typed reads: false and an error naming what was found on a type mismatch.
 * Integers are converted to double by reef_read_f64. */
bool reef_read_nil(reef_reader *r);
bool reef_read_bool(reef_reader *r, bool *out);
bool reef_read_u64(reef_reader *r, uint64_t *out);
bool reef_read_i64(reef_reader *r, int64_t *out);
bool reef_read_f64(reef_reader *r, double *out);
bool reef_read_str(reef_reader *r, const char **ptr, size_t *len); /* not NUL-terminated */
bool reef_read_bin(reef_reader *r, const uint8_t **ptr, size_t *len);
bool reef_read_array(reef_reader *r, uint32_t *count);
bool reef_read_map(reef_reader *r, uint32_t *count);
/* True when every byte has been read. */
bool reef_reader_done(const reef_reader *r);
/* The name of a type ("nil", "bool", "uint", "int", "float", "str", "bin", "array", "map", "ext"). */
const char *reef_mp_type_name(reef_mp_type t);

/* A growable MessagePack writer. Allocation failures are sticky: check `failed` (or the
 * result of reef_return_msgpack / reef_put_msgpack, which do) once at the end. */
typedef struct reef_writer {
    uint8_t *data;
    size_t len;
    size_t cap;
    bool failed;
} reef_writer;

void reef_writer_init(reef_writer *w);
/* Frees the writer's buffer (not needed after reef_return_msgpack, which takes it). */
void reef_writer_free(reef_writer *w);
void reef_write_nil(reef_writer *w);
void reef_write_bool(reef_writer *w, bool x);
void reef_write_u64(reef_writer *w, uint64_t x);
void reef_write_i64(reef_writer *w, int64_t x);
void reef_write_f64(reef_writer *w, double x);
void reef_write_f32(reef_writer *w, float x);
void reef_write_str(reef_writer *w, const char *s); /* NUL-terminated */
void reef_write_strn(reef_writer *w, const char *s, size_t len);
void reef_write_bin(reef_writer *w, const void *data, size_t len);
/* Container headers: write `count` elements (a map: `count` key/value pairs) after them. */
void reef_write_array(reef_writer *w, uint32_t count);
void reef_write_map(reef_writer *w, uint32_t count);
/* Appends already-encoded MessagePack. */
void reef_write_raw(reef_writer *w, const void *data, size_t len);

/* ------------------------------------------------------------------ arguments */

/* The arguments of a task, method or constructor call (valid during the call). */
typedef struct reef_args reef_args;

size_t reef_args_len(const reef_args *args);
/* True if argument i was passed as an object (by reference). */
bool reef_arg_is_object(const reef_args *args, size_t i);
/* True if argument i is missing or MessagePack nil (for optional arguments). */
bool reef_arg_is_nil(const reef_args *args, size_t i);

/* Typed accessors: decode argument i (inline, or an object copied with host `get`) as
 * MessagePack. On a missing argument or a type mismatch: false, and an error with code
 * REEF_CODE_BAD_ARGUMENT and message "argument i: ...". */
bool reef_arg_f64(const reef_args *args, size_t i, double *out); /* integers convert */
bool reef_arg_u64(const reef_args *args, size_t i, uint64_t *out);
bool reef_arg_i64(const reef_args *args, size_t i, int64_t *out);
bool reef_arg_bool(const reef_args *args, size_t i, bool *out);
/* A MessagePack str as a NUL-terminated string owned by the call. `len` may be NULL. */
bool reef_arg_str(const reef_args *args, size_t i, const char **out, size_t *len);
/* Argument i's raw bytes (not MessagePack): inline bytes are borrowed, an object's bytes
 * are copied once (host `get`); both stay valid until the call returns. */
bool reef_arg_bytes(const reef_args *args, size_t i, const uint8_t **data, size_t *len);
/* A MessagePack reader over argument i's bytes (for arrays, maps, ...). */
bool reef_arg_reader(const reef_args *args, size_t i, reef_reader *r);
/* Argument i as an object reference; an error if it was passed inline. */
bool reef_arg_object(const reef_args *args, size_t i, reef_object *out);

/* ------------------------------------------------------------------ views (zero-copy) */

/* A zero-copy, read-mostly view of an object: the host maps the object's pages
 * copy-on-write over a 64 KiB-aligned buffer of this instance's memory. Reads touch the
 * store's pages directly; writes through `data` land in private pages and never change
 * the object. */
typedef struct reef_view {
    const uint8_t *data; /* the object's bytes (NULL when len == 0) */
    size_t len;          /* the object's size */
    reef_object_id id;
    void *buf_;  /* internal: the mapped buffer */
    size_t cap_; /* internal: its length (a multiple of 64 KiB) */
} reef_view;

/* Maps `obj` (whose size must be right, as in an argument or a reef_put result). The
 * caller releases the view with reef_view_release. */
bool reef_view_map(reef_object obj, reef_view *view);
/* Maps object argument i. The view is released when the call returns, or earlier by
 * reef_view_release. */
bool reef_arg_view(const reef_args *args, size_t i, reef_view *view);
/* Unmaps the view and frees its buffer; `view->data` is then NULL. Safe to call twice. */
void reef_view_release(reef_view *view);
/* The view as little-endian doubles: NULL and an error unless its size is a multiple of 8. */
const double *reef_view_f64s(const reef_view *view, size_t *count);
const float *reef_view_f32s(const reef_view *view, size_t *count);
const uint64_t *reef_view_u64s(const reef_view *view, size_t *count);
const int64_t *reef_view_i64s(const reef_view *view, size_t *count);
const uint32_t *reef_view_u32s(const reef_view *view, size_t *count);
const int32_t *reef_view_i32s(const reef_view *view, size_t *count);

/* ------------------------------------------------------------------ array helpers */

/* Reductions over doubles (e.g. from reef_view_f64s) that run at memory speed: Wasm SIMD
 * (build.sh compiles with -msimd128) with eight partial results in flight, combined at the
 * end. A sequential `for` loop is one chain of dependent additions and runs at a third of
 * that. The sum's order differs from a sequential loop's, so it may differ in the last
 * bits (it is exact whenever every partial sum is, e.g. for integers below 2^53). */
double reef_f64_sum(const double *xs, size_t n);
/* The dot product of a[0..n) and b[0..n). */
double reef_f64_dot(const double *a, const double *b, size_t n);
/* The smallest / largest of xs[0..n) into *out (NaN if any element is NaN); false, with
 * *out untouched, when n == 0. */
bool reef_f64_min(const double *xs, size_t n, double *out);
bool reef_f64_max(const double *xs, size_t n, double *out);

/* ------------------------------------------------------------------ results */

/* Where a task or method puts its result. Returning REEF_OK without setting one returns nil. */
typedef struct reef_out reef_out;

/* Each sets the result (MessagePack unless noted) and returns REEF_OK, or REEF_ERR when
 * out of memory; so `return reef_return_f64(out, x);` ends a task. */
int reef_return_nil(reef_out *out);
int reef_return_bool(reef_out *out, bool x);
int reef_return_f64(reef_out *out, double x);
int reef_return_u64(reef_out *out, uint64_t x);
int reef_return_i64(reef_out *out, int64_t x);
int reef_return_str(reef_out *out, const char *s);
int reef_return_strn(reef_out *out, const char *s, size_t len);
/* Raw bytes (not MessagePack), copied. */
int reef_return_bytes(reef_out *out, const void *data, size_t len);
/* Raw bytes in a malloc'd buffer the SDK takes over (no copy; it frees it). */
int reef_return_owned(reef_out *out, void *data, size_t len);
/* The writer's MessagePack; takes over its buffer (the writer is left empty). */
int reef_return_msgpack(reef_out *out, reef_writer *w);
/* An object as the result (e.g. from reef_put), without copying its bytes. */
int reef_return_object(reef_out *out, reef_object_id id);

/* ------------------------------------------------------------------ host functions */

typedef enum reef_log_level {
    REEF_LOG_TRACE = 0,
    REEF_LOG_DEBUG = 1,
    REEF_LOG_INFO = 2,
    REEF_LOG_WARN = 3,
    REEF_LOG_ERROR = 4
} reef_log_level;

/* Writes a line to the running task's log (printf format). */
void reef_log(reef_log_level level, const char *fmt, ...) REEF_PRINTF(2, 3);

/* Stores `data` as a new immutable object owned by the running task. */
bool reef_put(const void *data, size_t len, reef_object *out);
/* Stores the writer's MessagePack as an object (the writer keeps its buffer). */
bool reef_put_msgpack(const reef_writer *w, reef_object *out);
/* Size of an object, waiting for it if it is a pending task result. */
bool reef_object_size(reef_object_id id, uint64_t *size);
/* Copies an object's bytes, waiting for it if pending. The caller frees *data with free(). */
bool reef_get(reef_object_id id, uint8_t **data, size_t *len);
/* Copies an object and decodes it as one MessagePack number (e.g. a task's result). */
bool reef_get_f64(reef_object_id id, double *out);
bool reef_get_u64(reef_object_id id, uint64_t *out);

/* An argument for a nested call (submit, actor create/call). Build them with reef_pass_*;
 * borrowed buffers must stay valid until the call that uses them returns. */
typedef struct reef_callarg {
    uint8_t kind_; /* 0 inline, 1 object */
    const uint8_t *data_;
    size_t len_;
    reef_object obj_;
    uint8_t small_[16];
} reef_callarg;

reef_callarg reef_pass_nil(void);
reef_callarg reef_pass_bool(bool x);
reef_callarg reef_pass_f64(double x);
reef_callarg reef_pass_u64(uint64_t x);
reef_callarg reef_pass_i64(int64_t x);
/* A MessagePack str (encoded into memory owned by the running call). */
reef_callarg reef_pass_str(const char *s);
/* Raw bytes, borrowed. */
reef_callarg reef_pass_bytes(const void *data, size_t len);
/* The writer's MessagePack, borrowed. */
reef_callarg reef_pass_msgpack(const reef_writer *w);
/* An object by reference (the callee may view it zero-copy). */
reef_callarg reef_pass_object(reef_object obj);

/* Submits task `function` of `module` (a module hash, or "" for this module). *result is
 * the id of its future result object: read it with reef_get / reef_get_f64. */
bool reef_submit(const char *module, const char *function, const reef_callarg *args,
                 size_t nargs, reef_object_id *result);

/* An actor handle. */
typedef uint64_t reef_actor_id;

/* Creates an actor of `klass` from `module` ("" for this module); a non-NULL `name`
 * makes it findable with reef_actor_lookup. */
bool reef_actor_create(const char *module, const char *klass, const reef_callarg *args,
                       size_t nargs, const char *name, reef_actor_id *actor);
bool reef_actor_lookup(const char *name, reef_actor_id *actor);
/* Calls `method`; *result is the id of its future result object. */
bool reef_actor_call(reef_actor_id actor, const char *method, const reef_callarg *args,
                     size_t nargs, reef_object_id *result);

/* ------------------------------------------------------------------ exporting */

/* A task: `run` reads `args`, sets `out` and returns REEF_OK, or returns REEF_ERR (with
 * an error recorded by reef_fail or a failed SDK call). */
typedef int (*reef_task_fn)(const reef_args *args, reef_out *out);

typedef struct reef_task {
    const char *name;
    reef_task_fn run;
} reef_task;

/* An actor method: `self` is the state the class's `init` created. */
typedef int (*reef_method_fn)(void *self, const reef_args *args, reef_out *out);

typedef struct reef_method {
    const char *name;
    reef_method_fn call;
} reef_method;

/* An actor class: `init` creates the state from the constructor arguments (store it in
 * *self); the host creates one instance per actor and calls its methods in order. */
typedef struct reef_actor_class {
    const char *name;
    int (*init)(const reef_args *args, void **self);
    const reef_method *methods;
    size_t n_methods;
} reef_actor_class;

typedef struct reef_module {
    const reef_task *tasks;
    size_t n_tasks;
    const reef_actor_class *actors;
    size_t n_actors;
} reef_module;

#define REEF_COUNT_(a) (sizeof(a) / sizeof((a)[0]))

/* A task exported under the C function's name: { "fn", fn }. */
#define REEF_TASK(fn) { #fn, fn }
/* A method: REEF_METHOD("add", acc_add). */
#define REEF_METHOD(name, fn) { name, fn }
/* An actor class: REEF_ACTOR("Accumulator", acc_init, acc_methods) with an array of methods. */
#define REEF_ACTOR(name, init, methods) { name, init, methods, REEF_COUNT_(methods) }

/* Defines what this module exports; use exactly one of them once, at file scope (in C or
 * C++). Without it the link fails with "undefined symbol: reef_module_def". */
#define REEF_MODULE(tasks, actors) \
    REEF_EXTERN_C const reef_module reef_module_def = {tasks, REEF_COUNT_(tasks), actors, REEF_COUNT_(actors)}
#define REEF_MODULE_TASKS(tasks) \
    REEF_EXTERN_C const reef_module reef_module_def = {tasks, REEF_COUNT_(tasks), 0, 0}

/* The module definition REEF_MODULE creates (the SDK's exports dispatch through it). */
extern const reef_module reef_module_def;

#ifdef __cplusplus
}
#endif

#endif /* REEF_H */
