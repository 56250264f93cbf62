/*
 * The runtime of the C guest SDK: the exports of interface reef:runtime/guest@0.2.0
 * (describe, run-task, actor-init, actor-call, cabi_realloc, cabi_post_*), per-call
 * state (errors, memory owned by the call, views), argument accessors, results and
 * wrappers over the host functions.
 *
 * A wasm32 instance is single-threaded and the component model never re-enters an
 * instance while an export runs, so plain statics hold the per-call state.
 */
#include "abi.h"

#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ errors */

static char *g_error; /* malloc'd, or NULL */
static reef_code g_error_code = REEF_CODE_GUEST_ERROR;
static const char OOM_MESSAGE[] = "out of memory";
static bool g_error_oom;

static void set_error(reef_code code, char *msg) {
    free(g_error);
    g_error = msg;
    g_error_code = code;
    g_error_oom = msg == NULL;
}

void reef_set_error_owned(char *msg) { set_error(REEF_CODE_GUEST_ERROR, msg); }

void reef_clear_error(void) {
    free(g_error);
    g_error = NULL;
    g_error_code = REEF_CODE_GUEST_ERROR;
    g_error_oom = false;
}

const char *reef_error(void) {
    if (g_error)
        return g_error;
    return g_error_oom ? OOM_MESSAGE : "";
}

reef_code reef_error_code(void) { return g_error_code; }

const char *reef_code_name(reef_code code) {
    static const char *const names[] = {
#define REEF_CODE_NAME_(name, wit) #name,
        REEF_CODES(REEF_CODE_NAME_)
#undef REEF_CODE_NAME_
    };
    return (unsigned)code < REEF_CODE_COUNT_ ? names[code] : "INTERNAL";
}

int reef_vfail_code(reef_code code, const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    char *msg = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (msg)
        vsnprintf(msg, (size_t)n + 1, fmt, ap);
    set_error(code, msg);
    return REEF_ERR;
}

int reef_vfail(const char *fmt, va_list ap) { return reef_vfail_code(REEF_CODE_GUEST_ERROR, fmt, ap); }

int reef_fail_code(reef_code code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    reef_vfail_code(code, fmt, ap);
    va_end(ap);
    return REEF_ERR;
}

int reef_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    reef_vfail_code(REEF_CODE_GUEST_ERROR, fmt, ap);
    va_end(ap);
    return REEF_ERR;
}

/* Takes over a string the host allocated through cabi_realloc. An empty string's
 * pointer is the placeholder cabi_realloc returns for size 0: nothing to free. */
static char *host_string(uint32_t ptr, uint32_t len) {
    if (len == 0)
        return calloc(1, 1);
    char *s = realloc((void *)(uintptr_t)ptr, (size_t)len + 1);
    if (!s) {
        free((void *)(uintptr_t)ptr);
        return NULL;
    }
    s[len] = '\0';
    return s;
}

void reef_set_error_host(const uint8_t *failure) {
    /* A code this SDK does not know (a newer host) still fails the call. */
    reef_code code = failure[0] < REEF_CODE_COUNT_ ? (reef_code)failure[0] : REEF_CODE_INTERNAL;
    const uint8_t *msg = failure + REEF_FAILURE_MESSAGE;
    set_error(code, host_string(reef_ld32(msg), reef_ld32(msg + 4)));
}

void reef_utf8_sanitize(char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 2, cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 3, cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 4, cp = c & 0x07;
        } else {
            s[i++] = '?';
            continue;
        }
        bool ok = i + n <= len;
        for (size_t k = 1; ok && k < n; k++) {
            unsigned char cc = (unsigned char)s[i + k];
            if ((cc & 0xC0) != 0x80)
                ok = false;
            else
                cp = (cp << 6) | (cc & 0x3F);
        }
        if (ok) {
            static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
            ok = cp >= min[n] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
        }
        if (ok) {
            i += n;
        } else {
            s[i++] = '?';
        }
    }
}

/* ------------------------------------------------------------------ memory owned by a call */

static void **g_owned;
static size_t g_owned_len, g_owned_cap;

bool reef_call_own(void *p) {
    if (!p)
        return false;
    if (g_owned_len == g_owned_cap) {
        size_t cap = g_owned_cap ? g_owned_cap * 2 : 16;
        void **grown = realloc(g_owned, cap * sizeof(void *));
        if (!grown) {
            free(p);
            return false;
        }
        g_owned = grown;
        g_owned_cap = cap;
    }
    g_owned[g_owned_len++] = p;
    return true;
}

void *reef_call_alloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p || !reef_call_own(p)) {
        reef_set_error_owned(NULL);
        return NULL;
    }
    return p;
}

static void free_call_owned(void) {
    for (size_t i = 0; i < g_owned_len; i++)
        free(g_owned[i]);
    g_owned_len = 0;
}

/* ------------------------------------------------------------------ views */

#define VIEW_ALIGN ((size_t)65536)
/* Objects of 8 MiB or more start on a 2 MiB boundary of the node's store; a buffer
 * aligned the same way lets the host's kernel map the view in 2 MiB pages (one
 * page-table entry instead of 512, when faulted in and again when released). */
#define HUGE_VIEW ((uint64_t)8 << 20)
#define HUGE_VIEW_ALIGN ((size_t)2 << 20)

/* Live view buffers (so a call's views can be released when it returns). */
typedef struct live_view {
    void *buf;
    size_t cap;
    bool call_scoped;
} live_view;

static live_view *g_views;
static size_t g_views_len, g_views_cap;

static bool track_view(void *buf, size_t cap, bool call_scoped) {
    if (g_views_len == g_views_cap) {
        size_t cap2 = g_views_cap ? g_views_cap * 2 : 8;
        live_view *grown = realloc(g_views, cap2 * sizeof(live_view));
        if (!grown)
            return false;
        g_views = grown;
        g_views_cap = cap2;
    }
    g_views[g_views_len++] = (live_view){buf, cap, call_scoped};
    return true;
}

static void unmap_buffer(void *buf, size_t cap) {
    reef_imp_release_view(buf, cap);
    free(buf);
}

static bool view_map(reef_object obj, reef_view *view, bool call_scoped) {
    memset(view, 0, sizeof *view);
    view->id = obj.id;
    if (obj.size == 0)
        return true;
    /* The buffer holds the object rounded up to 64 KiB; it must fit in wasm32 memory. */
    if (obj.size > (uint64_t)(SIZE_MAX - VIEW_ALIGN)) {
        reef_fail("object %llu (%llu bytes) is too large for a view",
                  (unsigned long long)obj.id, (unsigned long long)obj.size);
        return false;
    }
    size_t cap = ((size_t)obj.size + VIEW_ALIGN - 1) & ~(VIEW_ALIGN - 1);
    void *buf = aligned_alloc(obj.size >= HUGE_VIEW ? HUGE_VIEW_ALIGN : VIEW_ALIGN, cap);
    if (!buf) {
        reef_fail("out of memory: cannot allocate a %zu-byte view buffer for object %llu", cap,
                  (unsigned long long)obj.id);
        return false;
    }
    reef_ret_area ret = {{0}};
    reef_imp_map_view(obj.id, buf, cap, ret.b);
    if (ret.b[0] != 0) {
        free(buf);
        reef_set_error_host(ret.b + REEF_WIDE_PAYLOAD);
        /* Keep the host's code (e.g. VIEW_ERROR), add the context. */
        reef_fail_code(reef_error_code(), "map-view of object %llu: %s",
                       (unsigned long long)obj.id, reef_error());
        return false;
    }
    uint64_t size = reef_ld64(ret.b + REEF_WIDE_PAYLOAD);
    if (size != obj.size) {
        unmap_buffer(buf, cap);
        reef_fail("object %llu has %llu bytes, expected %llu", (unsigned long long)obj.id,
                  (unsigned long long)size, (unsigned long long)obj.size);
        return false;
    }
    if (!track_view(buf, cap, call_scoped)) {
        unmap_buffer(buf, cap);
        reef_set_error_owned(NULL);
        return false;
    }
    view->data = (const uint8_t *)buf;
    view->len = (size_t)obj.size;
    view->buf_ = buf;
    view->cap_ = cap;
    return true;
}

bool reef_view_map(reef_object obj, reef_view *view) { return view_map(obj, view, false); }

void reef_view_release(reef_view *view) {
    if (!view || !view->buf_)
        return;
    for (size_t i = 0; i < g_views_len; i++) {
        if (g_views[i].buf == view->buf_) {
            unmap_buffer(g_views[i].buf, g_views[i].cap);
            g_views[i] = g_views[--g_views_len];
            break;
        }
    }
    view->data = NULL;
    view->len = 0;
    view->buf_ = NULL;
    view->cap_ = 0;
}

/* Releases the views of the call that ends (all of them at the end of a task). */
static void release_views(bool all) {
    size_t i = 0;
    while (i < g_views_len) {
        if (all || g_views[i].call_scoped) {
            unmap_buffer(g_views[i].buf, g_views[i].cap);
            g_views[i] = g_views[--g_views_len];
        } else {
            i++;
        }
    }
}

static const void *view_elems(const reef_view *view, size_t size, size_t *count) {
    if (view->len % size != 0) {
        reef_fail("object %llu has %zu bytes, not a multiple of %zu",
                  (unsigned long long)view->id, view->len, size);
        if (count)
            *count = 0;
        return NULL;
    }
    if (count)
        *count = view->len / size;
    /* The buffer is 64 KiB-aligned; wasm32 is little-endian. An empty view has no
     * buffer: return a non-NULL pointer so callers can tell success from failure. */
    static const alignas(8) uint8_t empty[8];
    return view->len ? (const void *)view->data : (const void *)empty;
}

const double *reef_view_f64s(const reef_view *v, size_t *n) { return view_elems(v, 8, n); }
const float *reef_view_f32s(const reef_view *v, size_t *n) { return view_elems(v, 4, n); }
const uint64_t *reef_view_u64s(const reef_view *v, size_t *n) { return view_elems(v, 8, n); }
const int64_t *reef_view_i64s(const reef_view *v, size_t *n) { return view_elems(v, 8, n); }
const uint32_t *reef_view_u32s(const reef_view *v, size_t *n) { return view_elems(v, 4, n); }
const int32_t *reef_view_i32s(const reef_view *v, size_t *n) { return view_elems(v, 4, n); }

/* ------------------------------------------------------------------ arguments */

typedef struct arg_item {
    uint8_t kind; /* 0 inline, 1 object */
    uint8_t *data; /* inline bytes (host-allocated, freed after the call) or the object's copy */
    size_t len;
    reef_object obj;
    bool fetched; /* an object's bytes were copied into data */
} arg_item;

struct reef_args {
    size_t n;
    arg_item *items;
};

static int arg_error(size_t i, const char *fmt, ...) REEF_PRINTF(2, 3);
static int arg_error(size_t i, const char *fmt, ...) {
    char detail[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return reef_fail_code(REEF_CODE_BAD_ARGUMENT, "argument %zu: %s", i, detail);
}

size_t reef_args_len(const reef_args *args) { return args->n; }

static const arg_item *arg_at(const reef_args *args, size_t i) {
    if (i >= args->n) {
        arg_error(i, "missing (the call has %zu arguments)", args->n);
        return NULL;
    }
    return &args->items[i];
}

bool reef_arg_is_object(const reef_args *args, size_t i) {
    return i < args->n && args->items[i].kind == 1;
}

bool reef_arg_is_nil(const reef_args *args, size_t i) {
    if (i >= args->n)
        return true;
    const arg_item *a = &args->items[i];
    return a->kind == 0 && a->len == 1 && a->data[0] == 0xc0;
}

bool reef_arg_bytes(const reef_args *args, size_t i, const uint8_t **data, size_t *len) {
    arg_item *a = (arg_item *)arg_at(args, i);
    if (!a)
        return false;
    if (a->kind == 1 && !a->fetched) {
        uint8_t *copy;
        size_t n;
        if (!reef_get(a->obj.id, &copy, &n))
            return false;
        if (copy && !reef_call_own(copy)) {
            reef_set_error_owned(NULL);
            return false;
        }
        a->data = copy;
        a->len = n;
        a->fetched = true;
    }
    static const uint8_t empty[1];
    *data = a->data ? a->data : empty;
    if (len)
        *len = a->len;
    return true;
}

bool reef_arg_reader(const reef_args *args, size_t i, reef_reader *r) {
    const uint8_t *data;
    size_t len;
    if (!reef_arg_bytes(args, i, &data, &len))
        return false;
    reef_reader_init(r, data, len);
    return true;
}

/* Reads argument i as one MessagePack item. */
static bool arg_value(const reef_args *args, size_t i, reef_mp_value *v) {
    reef_reader r;
    if (!reef_arg_reader(args, i, &r))
        return false;
    if (!reef_read(&r, v)) {
        arg_error(i, "not MessagePack (%s)", reef_error());
        return false;
    }
    return true;
}

static bool arg_mismatch(size_t i, const char *want, const reef_mp_value *v) {
    char shown[96];
    switch (v->type) {
    case REEF_MP_UINT: snprintf(shown, sizeof shown, " (%llu)", (unsigned long long)v->v.u); break;
    case REEF_MP_INT: snprintf(shown, sizeof shown, " (%lld)", (long long)v->v.i); break;
    case REEF_MP_FLOAT: snprintf(shown, sizeof shown, " (%g)", v->v.f); break;
    case REEF_MP_BOOL: snprintf(shown, sizeof shown, " (%s)", v->v.b ? "true" : "false"); break;
    case REEF_MP_STR:
        snprintf(shown, sizeof shown, " (\"%.*s\"%s)", (int)(v->v.str.len > 40 ? 40 : v->v.str.len),
                 v->v.str.ptr, v->v.str.len > 40 ? "..." : "");
        break;
    default: shown[0] = '\0';
    }
    arg_error(i, "expected %s, got %s%s", want, reef_mp_type_name(v->type), shown);
    return false;
}

bool reef_arg_f64(const reef_args *args, size_t i, double *out) {
    reef_mp_value v;
    if (!arg_value(args, i, &v))
        return false;
    switch (v.type) {
    case REEF_MP_FLOAT: *out = v.v.f; return true;
    case REEF_MP_UINT: *out = (double)v.v.u; return true;
    case REEF_MP_INT: *out = (double)v.v.i; return true;
    default: return arg_mismatch(i, "a number", &v);
    }
}

bool reef_arg_u64(const reef_args *args, size_t i, uint64_t *out) {
    reef_mp_value v;
    if (!arg_value(args, i, &v))
        return false;
    if (v.type != REEF_MP_UINT)
        return arg_mismatch(i, "an unsigned integer", &v);
    *out = v.v.u;
    return true;
}

bool reef_arg_i64(const reef_args *args, size_t i, int64_t *out) {
    reef_mp_value v;
    if (!arg_value(args, i, &v))
        return false;
    if (v.type == REEF_MP_INT) {
        *out = v.v.i;
        return true;
    }
    if (v.type == REEF_MP_UINT && v.v.u <= (uint64_t)INT64_MAX) {
        *out = (int64_t)v.v.u;
        return true;
    }
    return arg_mismatch(i, "an integer", &v);
}

bool reef_arg_bool(const reef_args *args, size_t i, bool *out) {
    reef_mp_value v;
    if (!arg_value(args, i, &v))
        return false;
    if (v.type != REEF_MP_BOOL)
        return arg_mismatch(i, "a boolean", &v);
    *out = v.v.b;
    return true;
}

bool reef_arg_str(const reef_args *args, size_t i, const char **out, size_t *len) {
    reef_mp_value v;
    if (!arg_value(args, i, &v))
        return false;
    if (v.type != REEF_MP_STR)
        return arg_mismatch(i, "a string", &v);
    char *s = reef_call_alloc((size_t)v.v.str.len + 1);
    if (!s)
        return false;
    memcpy(s, v.v.str.ptr, v.v.str.len);
    s[v.v.str.len] = '\0';
    *out = s;
    if (len)
        *len = v.v.str.len;
    return true;
}

bool reef_arg_object(const reef_args *args, size_t i, reef_object *out) {
    const arg_item *a = arg_at(args, i);
    if (!a)
        return false;
    if (a->kind != 1) {
        arg_error(i, "expected an object, got %zu inline bytes", a->len);
        return false;
    }
    *out = a->obj;
    return true;
}

bool reef_arg_view(const reef_args *args, size_t i, reef_view *view) {
    reef_object obj;
    memset(view, 0, sizeof *view);
    if (!reef_arg_object(args, i, &obj))
        return false;
    return view_map(obj, view, true);
}

/* Takes a list<arg> the host allocated (the array is freed; inline bytes stay owned by
 * the items until free_args). */
static bool take_args(uint32_t ptr, uint32_t len, reef_args *args) {
    const uint8_t *base = (const uint8_t *)(uintptr_t)ptr;
    args->n = len;
    args->items = len ? calloc(len, sizeof(arg_item)) : NULL;
    if (len && !args->items) {
        args->n = 0;
        return false;
    }
    for (uint32_t k = 0; k < len; k++) {
        const uint8_t *e = base + (size_t)k * REEF_ARG_SIZE;
        arg_item *a = &args->items[k];
        a->kind = e[0];
        if (a->kind == 0) {
            a->len = reef_ld32(e + REEF_VARIANT_PAYLOAD + 4);
            a->data = a->len ? (uint8_t *)(uintptr_t)reef_ld32(e + REEF_VARIANT_PAYLOAD) : NULL;
        } else {
            a->obj.id = reef_ld64(e + REEF_VARIANT_PAYLOAD);
            a->obj.size = reef_ld64(e + REEF_VARIANT_PAYLOAD + 8);
        }
    }
    if (len)
        free((void *)(uintptr_t)ptr); /* not for an empty list: its pointer is a placeholder */
    return true;
}

static void free_args(reef_args *args) {
    for (size_t k = 0; k < args->n; k++) {
        /* Fetched object copies are owned by the call; inline bytes by the host list. */
        if (args->items[k].kind == 0 && args->items[k].len)
            free(args->items[k].data);
    }
    free(args->items);
    args->items = NULL;
    args->n = 0;
}

/* ------------------------------------------------------------------ results */

struct reef_out {
    uint8_t kind; /* 0 bytes, 1 object */
    bool set;
    uint8_t *data; /* malloc'd */
    size_t len;
    reef_object_id object;
};

static void out_clear(reef_out *out) {
    free(out->data);
    memset(out, 0, sizeof *out);
}

int reef_return_owned(reef_out *out, void *data, size_t len) {
    out_clear(out);
    out->set = true;
    out->data = data;
    out->len = len;
    return REEF_OK;
}

int reef_return_bytes(reef_out *out, const void *data, size_t len) {
    void *copy = malloc(len ? len : 1);
    if (!copy) {
        reef_set_error_owned(NULL);
        return REEF_ERR;
    }
    if (len)
        memcpy(copy, data, len);
    return reef_return_owned(out, copy, len);
}

int reef_return_msgpack(reef_out *out, reef_writer *w) {
    if (w->failed) {
        reef_writer_free(w);
        reef_set_error_owned(NULL);
        return REEF_ERR;
    }
    int rc = reef_return_owned(out, w->data, w->len);
    w->data = NULL;
    w->len = w->cap = 0;
    return rc;
}

/* Encodes one scalar with `write` into a fresh writer and returns it. */
#define RETURN_SCALAR(call)             \
    do {                                \
        reef_writer w_;                 \
        reef_writer_init(&w_);          \
        call;                           \
        return reef_return_msgpack(out, &w_); \
    } while (0)

int reef_return_nil(reef_out *out) { RETURN_SCALAR(reef_write_nil(&w_)); }
int reef_return_bool(reef_out *out, bool x) { RETURN_SCALAR(reef_write_bool(&w_, x)); }
int reef_return_f64(reef_out *out, double x) { RETURN_SCALAR(reef_write_f64(&w_, x)); }
int reef_return_u64(reef_out *out, uint64_t x) { RETURN_SCALAR(reef_write_u64(&w_, x)); }
int reef_return_i64(reef_out *out, int64_t x) { RETURN_SCALAR(reef_write_i64(&w_, x)); }
int reef_return_str(reef_out *out, const char *s) { RETURN_SCALAR(reef_write_str(&w_, s)); }
int reef_return_strn(reef_out *out, const char *s, size_t len) {
    RETURN_SCALAR(reef_write_strn(&w_, s, len));
}

int reef_return_object(reef_out *out, reef_object_id id) {
    out_clear(out);
    out->set = true;
    out->kind = 1;
    out->object = id;
    return REEF_OK;
}

/* ------------------------------------------------------------------ host functions */

void reef_log(reef_log_level level, const char *fmt, ...) {
    char small[256];
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    char *msg = small;
    if (n >= (int)sizeof small) {
        char *big = malloc((size_t)n + 1);
        if (big) {
            vsnprintf(big, (size_t)n + 1, fmt, ap2);
            msg = big;
        } else {
            n = (int)sizeof small - 1;
        }
    }
    va_end(ap2);
    va_end(ap);
    if (n < 0)
        n = 0;
    reef_utf8_sanitize(msg, (size_t)n);
    reef_imp_log((int32_t)level, msg, (size_t)n);
    if (msg != small)
        free(msg);
}

static bool lift_u64(const reef_ret_area *ret, uint64_t *out) {
    if (ret->b[0] == 0) {
        *out = reef_ld64(ret->b + REEF_WIDE_PAYLOAD);
        return true;
    }
    reef_set_error_host(ret->b + REEF_WIDE_PAYLOAD);
    return false;
}

bool reef_put(const void *data, size_t len, reef_object *out) {
    reef_ret_area ret = {{0}};
    static const uint8_t empty[1];
    reef_imp_put(data ? data : empty, len, ret.b);
    if (ret.b[0] == 0) {
        out->id = reef_ld64(ret.b + REEF_WIDE_PAYLOAD);
        out->size = reef_ld64(ret.b + REEF_WIDE_PAYLOAD + 8);
        return true;
    }
    reef_set_error_host(ret.b + REEF_WIDE_PAYLOAD);
    return false;
}

bool reef_put_msgpack(const reef_writer *w, reef_object *out) {
    if (w->failed) {
        reef_set_error_owned(NULL);
        return false;
    }
    return reef_put(w->data, w->len, out);
}

bool reef_object_size(reef_object_id id, uint64_t *size) {
    reef_ret_area ret = {{0}};
    reef_imp_object_size(id, ret.b);
    return lift_u64(&ret, size);
}

bool reef_get(reef_object_id id, uint8_t **data, size_t *len) {
    reef_ret_area ret = {{0}};
    reef_imp_get(id, ret.b);
    if (ret.b[0] != 0) {
        reef_set_error_host(ret.b + REEF_NARROW_PAYLOAD);
        return false;
    }
    uint32_t ptr = reef_ld32(ret.b + REEF_NARROW_PAYLOAD), n = reef_ld32(ret.b + REEF_NARROW_PAYLOAD + 4);
    *data = (uint8_t *)(uintptr_t)(n ? ptr : 0);
    *len = n;
    return true;
}

static bool get_number(reef_object_id id, reef_mp_value *v) {
    uint8_t *data;
    size_t len;
    if (!reef_get(id, &data, &len))
        return false;
    reef_reader r;
    reef_reader_init(&r, data, len);
    bool ok = reef_read(&r, v);
    free(data);
    if (!ok)
        reef_fail_code(reef_error_code(), "object %llu: %s", (unsigned long long)id, reef_error());
    return ok;
}

bool reef_get_f64(reef_object_id id, double *out) {
    reef_mp_value v;
    if (!get_number(id, &v))
        return false;
    switch (v.type) {
    case REEF_MP_FLOAT: *out = v.v.f; return true;
    case REEF_MP_UINT: *out = (double)v.v.u; return true;
    case REEF_MP_INT: *out = (double)v.v.i; return true;
    default:
        reef_fail("object %llu: expected a number, got %s", (unsigned long long)id,
                  reef_mp_type_name(v.type));
        return false;
    }
}

bool reef_get_u64(reef_object_id id, uint64_t *out) {
    reef_mp_value v;
    if (!get_number(id, &v))
        return false;
    if (v.type != REEF_MP_UINT) {
        reef_fail("object %llu: expected an unsigned integer, got %s", (unsigned long long)id,
                  reef_mp_type_name(v.type));
        return false;
    }
    *out = v.v.u;
    return true;
}

static reef_callarg inline_small(const reef_writer *w) {
    reef_callarg a;
    memset(&a, 0, sizeof a);
    memcpy(a.small_, w->data, w->len); /* callers write at most 9 bytes */
    a.len_ = w->len;
    return a;
}

/* A writer over a stack buffer, for scalars (never allocates). */
#define SMALL_ARG(call)                                      \
    do {                                                     \
        uint8_t buf_[16];                                    \
        reef_writer w_ = {buf_, 0, sizeof buf_, false};      \
        call;                                                \
        return inline_small(&w_);                            \
    } while (0)

reef_callarg reef_pass_nil(void) { SMALL_ARG(reef_write_nil(&w_)); }
reef_callarg reef_pass_bool(bool x) { SMALL_ARG(reef_write_bool(&w_, x)); }
reef_callarg reef_pass_f64(double x) { SMALL_ARG(reef_write_f64(&w_, x)); }
reef_callarg reef_pass_u64(uint64_t x) { SMALL_ARG(reef_write_u64(&w_, x)); }
reef_callarg reef_pass_i64(int64_t x) { SMALL_ARG(reef_write_i64(&w_, x)); }

reef_callarg reef_pass_str(const char *s) {
    reef_callarg a;
    memset(&a, 0, sizeof a);
    reef_writer w;
    reef_writer_init(&w);
    reef_write_str(&w, s);
    if (w.failed || !reef_call_own(w.data)) {
        /* Out of memory: pass nil rather than a half-written value. */
        reef_writer_free(&w);
        return reef_pass_nil();
    }
    a.data_ = w.data;
    a.len_ = w.len;
    return a;
}

reef_callarg reef_pass_bytes(const void *data, size_t len) {
    reef_callarg a;
    memset(&a, 0, sizeof a);
    a.data_ = (const uint8_t *)data;
    a.len_ = len;
    return a;
}

reef_callarg reef_pass_msgpack(const reef_writer *w) { return reef_pass_bytes(w->data, w->len); }

reef_callarg reef_pass_object(reef_object obj) {
    reef_callarg a;
    memset(&a, 0, sizeof a);
    a.kind_ = 1;
    a.obj_ = obj;
    return a;
}

/* Lays out `args` as a list<arg> array (24-byte, 8-aligned elements). */
static uint8_t *lower_args(const reef_callarg *args, size_t n) {
    uint8_t *list = aligned_alloc(REEF_ARG_ALIGN, n ? n * REEF_ARG_SIZE : REEF_ARG_ALIGN);
    if (!list) {
        reef_set_error_owned(NULL);
        return NULL;
    }
    memset(list, 0, n * REEF_ARG_SIZE);
    for (size_t k = 0; k < n; k++) {
        uint8_t *e = list + k * REEF_ARG_SIZE;
        const reef_callarg *a = &args[k];
        e[0] = a->kind_;
        if (a->kind_ == 0) {
            const uint8_t *data = a->data_ ? a->data_ : a->small_;
            reef_st32(e + REEF_VARIANT_PAYLOAD, (uint32_t)(uintptr_t)data);
            reef_st32(e + REEF_VARIANT_PAYLOAD + 4, (uint32_t)a->len_);
        } else {
            reef_st64(e + REEF_VARIANT_PAYLOAD, a->obj_.id);
            reef_st64(e + REEF_VARIANT_PAYLOAD + 8, a->obj_.size);
        }
    }
    return list;
}

bool reef_submit(const char *module, const char *function, const reef_callarg *args,
                 size_t nargs, reef_object_id *result) {
    uint8_t *list = lower_args(args, nargs);
    if (!list)
        return false;
    reef_ret_area ret = {{0}};
    if (!module)
        module = "";
    reef_imp_submit(module, strlen(module), function, strlen(function), list, nargs, ret.b);
    free(list);
    return lift_u64(&ret, result);
}

bool reef_actor_create(const char *module, const char *klass, const reef_callarg *args,
                       size_t nargs, const char *name, reef_actor_id *actor) {
    uint8_t *list = lower_args(args, nargs);
    if (!list)
        return false;
    reef_ret_area ret = {{0}};
    if (!module)
        module = "";
    reef_imp_actor_create(module, strlen(module), klass, strlen(klass), list, nargs, name != NULL,
                          name ? name : "", name ? strlen(name) : 0, ret.b);
    free(list);
    return lift_u64(&ret, actor);
}

bool reef_actor_lookup(const char *name, reef_actor_id *actor) {
    reef_ret_area ret = {{0}};
    reef_imp_actor_lookup(name, strlen(name), ret.b);
    return lift_u64(&ret, actor);
}

bool reef_actor_call(reef_actor_id actor, const char *method, const reef_callarg *args,
                     size_t nargs, reef_object_id *result) {
    uint8_t *list = lower_args(args, nargs);
    if (!list)
        return false;
    reef_ret_area ret = {{0}};
    reef_imp_actor_call(actor, method, strlen(method), list, nargs, ret.b);
    free(list);
    return lift_u64(&ret, result);
}

/* ------------------------------------------------------------------ exports */

#define GUEST "reef:runtime/guest@0.2.0#"
#define EXPORT(name) __attribute__((export_name(name)))

static reef_ret_area g_ret;      /* the return area of every export */
static void *g_keep[8];          /* what it points to, freed by cabi_post_* */
static size_t g_keep_len;

static void keep(void *p) {
    if (g_keep_len < sizeof g_keep / sizeof g_keep[0])
        g_keep[g_keep_len++] = p;
}

static void post_return(void) {
    for (size_t i = 0; i < g_keep_len; i++)
        free(g_keep[i]);
    g_keep_len = 0;
}

/* Flushes buffered stdio output so that it is not lost when the instance ends. The
 * weak reference links no stdio code into modules that do not use it. */
extern void __stdio_exit(void) __attribute__((weak));
static void flush_stdio(void) {
    if (__stdio_exit)
        __stdio_exit();
}

/* The error message of a failed call, as a string that stays valid until post-return;
 * its code stays in g_error_code. */
static char *take_error_message(const char *fallback) {
    char *msg = g_error;
    g_error = NULL;
    if (!msg) {
        const char *text = g_error_oom ? OOM_MESSAGE : fallback;
        msg = malloc(strlen(text) + 1);
        if (msg)
            strcpy(msg, text);
    }
    g_error_oom = false;
    if (msg)
        reef_utf8_sanitize(msg, strlen(msg));
    return msg;
}

/* Writes the current error as a failure record at `off` of the return area. */
static void set_failure(size_t off, const char *fallback) {
    static const char oom[] = "out of memory";
    g_ret.b[off] = (uint8_t)g_error_code;
    char *msg = take_error_message(fallback);
    off += REEF_FAILURE_MESSAGE;
    if (msg) {
        keep(msg);
        reef_st32(g_ret.b + off, (uint32_t)(uintptr_t)msg);
        reef_st32(g_ret.b + off + 4, (uint32_t)strlen(msg));
    } else {
        reef_st32(g_ret.b + off, (uint32_t)(uintptr_t)oom);
        reef_st32(g_ret.b + off + 4, sizeof oom - 1);
    }
}

/* Writes a result<output, failure>. */
static uint8_t *finish_output(int rc, reef_out *out, const char *fallback) {
    memset(g_ret.b, 0, sizeof g_ret.b);
    if (rc != REEF_OK) {
        out_clear(out);
        g_ret.b[0] = 1;
        set_failure(REEF_WIDE_PAYLOAD, fallback);
    } else if (out->kind == 1) {
        g_ret.b[REEF_WIDE_PAYLOAD] = 1;
        reef_st64(g_ret.b + REEF_WIDE_PAYLOAD + REEF_VARIANT_PAYLOAD, out->object);
    } else {
        if (!out->set) {
            /* No result set: nil. */
            static uint8_t nil = 0xc0;
            reef_st32(g_ret.b + REEF_WIDE_PAYLOAD + REEF_VARIANT_PAYLOAD, (uint32_t)(uintptr_t)&nil);
            reef_st32(g_ret.b + REEF_WIDE_PAYLOAD + REEF_VARIANT_PAYLOAD + 4, 1);
        } else {
            if (out->data)
                keep(out->data);
            reef_st32(g_ret.b + REEF_WIDE_PAYLOAD + REEF_VARIANT_PAYLOAD, (uint32_t)(uintptr_t)out->data);
            reef_st32(g_ret.b + REEF_WIDE_PAYLOAD + REEF_VARIANT_PAYLOAD + 4, (uint32_t)out->len);
        }
    }
    return g_ret.b;
}

/* Common entry: checks the guard and takes the export's name and arguments. */
static char *begin_call(uint32_t name_ptr, uint32_t name_len, uint32_t args_ptr,
                        uint32_t args_len, reef_args *args) {
    reef_clear_error();
    char *name = host_string(name_ptr, name_len);
    if (!name || !take_args(args_ptr, args_len, args)) {
        __builtin_trap(); /* out of memory before the call could start */
    }
    return name;
}

static void end_call(reef_args *args, char *name, bool all_views) {
    release_views(all_views);
    free_args(args);
    free_call_owned();
    free(name);
    flush_stdio();
    reef_check_null_guard();
}

/* Joins names for an UNKNOWN_FUNCTION error. */
static int unknown(const char *what, const char *name, const char *const *names, size_t stride,
                   size_t n) {
    size_t total = 1;
    for (size_t k = 0; k < n; k++)
        total += strlen(*(const char *const *)((const char *)names + k * stride)) + 2;
    char *list = malloc(total);
    if (!list)
        return reef_fail_code(REEF_CODE_UNKNOWN_FUNCTION, "unknown %s `%s`", what, name);
    list[0] = '\0';
    for (size_t k = 0; k < n; k++) {
        if (k)
            strcat(list, ", ");
        strcat(list, *(const char *const *)((const char *)names + k * stride));
    }
    reef_fail_code(REEF_CODE_UNKNOWN_FUNCTION, "unknown %s `%s` (this module has: %s)", what, name,
                   list);
    free(list);
    return REEF_ERR;
}

EXPORT(GUEST "run-task")
uint8_t *reef_export_run_task(uint32_t name_ptr, uint32_t name_len, uint32_t args_ptr,
                              uint32_t args_len) {
    reef_args args;
    char *name = begin_call(name_ptr, name_len, args_ptr, args_len, &args);
    const reef_module *m = &reef_module_def;
    reef_out out;
    memset(&out, 0, sizeof out);
    int rc = REEF_ERR;
    const reef_task *task = NULL;
    for (size_t k = 0; k < m->n_tasks; k++) {
        if (strcmp(m->tasks[k].name, name) == 0) {
            task = &m->tasks[k];
            break;
        }
    }
    if (task) {
        rc = task->run(&args, &out);
    } else {
        unknown("task", name, m->n_tasks ? &m->tasks[0].name : NULL, sizeof(reef_task),
                m->n_tasks);
    }
    char fallback[160];
    snprintf(fallback, sizeof fallback, "task `%.100s` failed (no error message)", name);
    uint8_t *ret = finish_output(rc, &out, fallback);
    end_call(&args, name, true);
    return ret;
}

/* The actor of this instance, set by actor-init. */
static const reef_actor_class *g_actor_class;
static void *g_actor_self;

EXPORT(GUEST "actor-init")
uint8_t *reef_export_actor_init(uint32_t class_ptr, uint32_t class_len, uint32_t args_ptr,
                                uint32_t args_len) {
    reef_args args;
    char *klass = begin_call(class_ptr, class_len, args_ptr, args_len, &args);
    const reef_module *m = &reef_module_def;
    int rc = REEF_ERR;
    const reef_actor_class *c = NULL;
    for (size_t k = 0; k < m->n_actors; k++) {
        if (strcmp(m->actors[k].name, klass) == 0) {
            c = &m->actors[k];
            break;
        }
    }
    if (g_actor_class) {
        reef_fail("this instance already holds an actor");
    } else if (!c) {
        unknown("actor class", klass, m->n_actors ? &m->actors[0].name : NULL,
                sizeof(reef_actor_class), m->n_actors);
    } else {
        void *self = NULL;
        rc = c->init ? c->init(&args, &self) : REEF_OK;
        if (rc == REEF_OK) {
            g_actor_class = c;
            g_actor_self = self;
        }
    }
    memset(g_ret.b, 0, sizeof g_ret.b);
    if (rc != REEF_OK) {
        g_ret.b[0] = 1;
        char fallback[160];
        snprintf(fallback, sizeof fallback, "constructor of `%.100s` failed (no error message)",
                 klass);
        set_failure(REEF_NARROW_PAYLOAD, fallback);
    }
    end_call(&args, klass, false);
    return g_ret.b;
}

EXPORT(GUEST "actor-call")
uint8_t *reef_export_actor_call(uint32_t method_ptr, uint32_t method_len, uint32_t args_ptr,
                                uint32_t args_len) {
    reef_args args;
    char *method = begin_call(method_ptr, method_len, args_ptr, args_len, &args);
    reef_out out;
    memset(&out, 0, sizeof out);
    int rc = REEF_ERR;
    const reef_actor_class *c = g_actor_class;
    if (!c) {
        reef_fail("actor-call before actor-init");
    } else {
        const reef_method *found = NULL;
        for (size_t k = 0; k < c->n_methods; k++) {
            if (strcmp(c->methods[k].name, method) == 0) {
                found = &c->methods[k];
                break;
            }
        }
        if (found) {
            rc = found->call(g_actor_self, &args, &out);
        } else {
            char what[160];
            snprintf(what, sizeof what, "method of actor class `%.100s`", c->name);
            unknown(what, method, c->n_methods ? &c->methods[0].name : NULL, sizeof(reef_method),
                    c->n_methods);
        }
    }
    char fallback[160];
    snprintf(fallback, sizeof fallback, "method `%.100s` failed (no error message)", method);
    uint8_t *ret = finish_output(rc, &out, fallback);
    end_call(&args, method, false);
    return ret;
}

EXPORT(GUEST "describe")
uint8_t *reef_export_describe(void) {
    const reef_module *m = &reef_module_def;
    size_t n_methods = 0;
    for (size_t k = 0; k < m->n_actors; k++)
        n_methods += m->actors[k].n_methods;
    /* One allocation: task names, actor classes, then every class's method names. */
    size_t words = 2 * m->n_tasks + 4 * m->n_actors + 2 * n_methods;
    uint32_t *w = malloc(words ? words * 4 : 4);
    if (!w)
        __builtin_trap();
    uint32_t *tasks = w, *classes = w + 2 * m->n_tasks, *methods = classes + 4 * m->n_actors;
    for (size_t k = 0; k < m->n_tasks; k++) {
        tasks[2 * k] = (uint32_t)(uintptr_t)m->tasks[k].name;
        tasks[2 * k + 1] = (uint32_t)strlen(m->tasks[k].name);
    }
    for (size_t k = 0; k < m->n_actors; k++) {
        const reef_actor_class *c = &m->actors[k];
        classes[4 * k] = (uint32_t)(uintptr_t)c->name;
        classes[4 * k + 1] = (uint32_t)strlen(c->name);
        classes[4 * k + 2] = (uint32_t)(uintptr_t)methods;
        classes[4 * k + 3] = (uint32_t)c->n_methods;
        for (size_t j = 0; j < c->n_methods; j++) {
            *methods++ = (uint32_t)(uintptr_t)c->methods[j].name;
            *methods++ = (uint32_t)strlen(c->methods[j].name);
        }
    }
    keep(w);
    static const char sdk[] = REEF_SDK_VERSION;
    memset(g_ret.b, 0, sizeof g_ret.b);
    reef_st32(g_ret.b + 0, (uint32_t)(uintptr_t)sdk);
    reef_st32(g_ret.b + 4, sizeof sdk - 1);
    reef_st32(g_ret.b + 8, (uint32_t)(uintptr_t)tasks);
    reef_st32(g_ret.b + 12, (uint32_t)m->n_tasks);
    reef_st32(g_ret.b + 16, (uint32_t)(uintptr_t)classes);
    reef_st32(g_ret.b + 20, (uint32_t)m->n_actors);
    return g_ret.b;
}

EXPORT("cabi_post_" GUEST "describe") void reef_post_describe(uint8_t *r) { (void)r, post_return(); }
EXPORT("cabi_post_" GUEST "run-task") void reef_post_run_task(uint8_t *r) { (void)r, post_return(); }
EXPORT("cabi_post_" GUEST "actor-init") void reef_post_actor_init(uint8_t *r) { (void)r, post_return(); }
EXPORT("cabi_post_" GUEST "actor-call") void reef_post_actor_call(uint8_t *r) { (void)r, post_return(); }

/* How the host allocates guest memory for the strings and lists it passes in. */
EXPORT("cabi_realloc")
void *cabi_realloc(void *old, size_t old_size, size_t align, size_t new_size) {
    if (new_size == 0) {
        if (old_size)
            free(old);
        return (void *)align; /* a non-null, aligned address for an empty allocation */
    }
    void *p;
    if (align <= alignof(max_align_t)) {
        p = old_size ? realloc(old, new_size) : malloc(new_size);
    } else {
        p = aligned_alloc(align, (new_size + align - 1) & ~(align - 1));
        if (p && old_size) {
            memcpy(p, old, old_size < new_size ? old_size : new_size);
            free(old);
        }
    }
    if (!p)
        __builtin_trap(); /* the host reports it as the memory limit being hit */
    return p;
}
