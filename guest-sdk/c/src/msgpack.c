/*
 * A small MessagePack reader and writer (https://github.com/msgpack/msgpack/blob/master/spec.md).
 * Numbers are written in their shortest form; readers accept every integer width.
 */
#include "abi.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ reader */

const char *reef_mp_type_name(reef_mp_type t) {
    static const char *const names[] = {"nil", "bool", "uint", "int",   "float",
                                        "str", "bin",  "array", "map", "ext"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

void reef_reader_init(reef_reader *r, const void *data, size_t len) {
    r->pos = (const uint8_t *)data;
    r->end = r->pos + len;
}

bool reef_reader_done(const reef_reader *r) { return r->pos >= r->end; }

static bool truncated(void) {
    reef_fail("truncated MessagePack");
    return false;
}

static bool need(reef_reader *r, size_t n) { return (size_t)(r->end - r->pos) >= n ? true : truncated(); }

static uint64_t be(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int k = 0; k < n; k++)
        v = (v << 8) | p[k];
    return v;
}

/* Reads an n-byte big-endian unsigned number. */
static bool take(reef_reader *r, int n, uint64_t *v) {
    if (!need(r, (size_t)n))
        return false;
    *v = be(r->pos, n);
    r->pos += n;
    return true;
}

static bool take_span(reef_reader *r, uint64_t len, const uint8_t **ptr) {
    if (!need(r, (size_t)len))
        return false;
    *ptr = r->pos;
    r->pos += len;
    return true;
}

static void set_int(reef_mp_value *out, int64_t x) {
    if (x >= 0) {
        out->type = REEF_MP_UINT;
        out->v.u = (uint64_t)x;
    } else {
        out->type = REEF_MP_INT;
        out->v.i = x;
    }
}

bool reef_read(reef_reader *r, reef_mp_value *out) {
    if (!need(r, 1))
        return false;
    uint8_t c = *r->pos++;
    uint64_t n;
    const uint8_t *p;
    memset(out, 0, sizeof *out);
    if (c <= 0x7f) {
        out->type = REEF_MP_UINT;
        out->v.u = c;
        return true;
    }
    if (c >= 0xe0) {
        set_int(out, (int8_t)c);
        return true;
    }
    if ((c & 0xe0) == 0xa0) {
        n = c & 0x1f;
        goto str;
    }
    if ((c & 0xf0) == 0x90) {
        out->type = REEF_MP_ARRAY;
        out->v.count = c & 0x0f;
        return true;
    }
    if ((c & 0xf0) == 0x80) {
        out->type = REEF_MP_MAP;
        out->v.count = c & 0x0f;
        return true;
    }
    switch (c) {
    case 0xc0: out->type = REEF_MP_NIL; return true;
    case 0xc2:
    case 0xc3:
        out->type = REEF_MP_BOOL;
        out->v.b = c == 0xc3;
        return true;
    case 0xc4: case 0xc5: case 0xc6:
        if (!take(r, 1 << (c - 0xc4), &n) || !take_span(r, n, &p))
            return false;
        out->type = REEF_MP_BIN;
        out->v.bin.ptr = p;
        out->v.bin.len = (uint32_t)n;
        return true;
    case 0xc7: case 0xc8: case 0xc9: {
        uint64_t t;
        if (!take(r, 1 << (c - 0xc7), &n) || !take(r, 1, &t) || !take_span(r, n, &p))
            return false;
        out->type = REEF_MP_EXT;
        out->v.bin.ptr = p;
        out->v.bin.len = (uint32_t)n;
        out->v.bin.ext_type = (int8_t)t;
        return true;
    }
    case 0xca: {
        if (!take(r, 4, &n))
            return false;
        uint32_t bits = (uint32_t)n;
        float f;
        memcpy(&f, &bits, 4);
        out->type = REEF_MP_FLOAT;
        out->v.f = f;
        return true;
    }
    case 0xcb: {
        if (!take(r, 8, &n))
            return false;
        out->type = REEF_MP_FLOAT;
        memcpy(&out->v.f, &n, 8);
        return true;
    }
    case 0xcc: case 0xcd: case 0xce: case 0xcf:
        if (!take(r, 1 << (c - 0xcc), &n))
            return false;
        out->type = REEF_MP_UINT;
        out->v.u = n;
        return true;
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
        int bytes = 1 << (c - 0xd0);
        if (!take(r, bytes, &n))
            return false;
        int64_t x;
        if (bytes == 8) {
            x = (int64_t)n;
        } else {
            int shift = 64 - 8 * bytes; /* sign-extend */
            x = (int64_t)(n << shift) >> shift;
        }
        set_int(out, x);
        return true;
    }
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: {
        uint64_t t;
        if (!take(r, 1, &t) || !take_span(r, (uint64_t)1 << (c - 0xd4), &p))
            return false;
        out->type = REEF_MP_EXT;
        out->v.bin.ptr = p;
        out->v.bin.len = 1u << (c - 0xd4);
        out->v.bin.ext_type = (int8_t)t;
        return true;
    }
    case 0xd9: case 0xda: case 0xdb:
        if (!take(r, 1 << (c - 0xd9), &n))
            return false;
        goto str;
    case 0xdc: case 0xdd:
        if (!take(r, c == 0xdc ? 2 : 4, &n))
            return false;
        out->type = REEF_MP_ARRAY;
        out->v.count = (uint32_t)n;
        return true;
    case 0xde: case 0xdf:
        if (!take(r, c == 0xde ? 2 : 4, &n))
            return false;
        out->type = REEF_MP_MAP;
        out->v.count = (uint32_t)n;
        return true;
    default:
        reef_fail("invalid MessagePack byte 0x%02x", c);
        return false;
    }
str:
    if (!take_span(r, n, &p))
        return false;
    out->type = REEF_MP_STR;
    out->v.str.ptr = (const char *)p;
    out->v.str.len = (uint32_t)n;
    return true;
}

bool reef_read_skip(reef_reader *r) {
    /* Items still to skip; containers add their elements (no recursion). */
    uint64_t pending = 1;
    while (pending) {
        reef_mp_value v;
        if (!reef_read(r, &v))
            return false;
        pending--;
        if (v.type == REEF_MP_ARRAY)
            pending += v.v.count;
        else if (v.type == REEF_MP_MAP)
            pending += 2 * (uint64_t)v.v.count;
    }
    return true;
}

static bool mismatch(const char *want, const reef_mp_value *v) {
    reef_fail("expected %s, got %s", want, reef_mp_type_name(v->type));
    return false;
}

bool reef_read_nil(reef_reader *r) {
    reef_mp_value v;
    if (!reef_read(r, &v))
        return false;
    return v.type == REEF_MP_NIL ? true : mismatch("nil", &v);
}

bool reef_read_bool(reef_reader *r, bool *out) {
    reef_mp_value v;
    if (!reef_read(r, &v))
        return false;
    if (v.type != REEF_MP_BOOL)
        return mismatch("a boolean", &v);
    *out = v.v.b;
    return true;
}

bool reef_read_u64(reef_reader *r, uint64_t *out) {
    reef_mp_value v;
    if (!reef_read(r, &v))
        return false;
    if (v.type != REEF_MP_UINT)
        return mismatch("an unsigned integer", &v);
    *out = v.v.u;
    return true;
}

bool reef_read_i64(reef_reader *r, int64_t *out) {
    reef_mp_value v;
    if (!reef_read(r, &v))
        return false;
    if (v.type == REEF_MP_INT) {
        *out = v.v.i;
        return true;
    }
    if (v.type == REEF_MP_UINT && v.v.u <= (uint64_t)INT64_MAX) {
        *out = (int64_t)v.v.u;
        return true;
    }
    return mismatch("an integer", &v);
}

bool reef_read_f64(reef_reader *r, double *out) {
    reef_mp_value v;
    if (!reef_read(r, &v))
        return false;
    switch (v.type) {
    case REEF_MP_FLOAT: *out = v.v.f; return true;
    case REEF_MP_UINT: *out = (double)v.v.u; return true;
    case REEF_MP_INT: *out = (double)v.v.i; return true;
    default: return mismatch("a number", &v);
    }
}

bool reef_read_str(reef_reader *r, const char **ptr, size_t *len) {
    reef_mp_value v;
    if (!reef_read(r, &v))
        return false;
    if (v.type != REEF_MP_STR)
        return mismatch("a string", &v);
    *ptr = v.v.str.ptr;
    *len = v.v.str.len;
    return true;
}

bool reef_read_bin(reef_reader *r, const uint8_t **ptr, size_t *len) {
    reef_mp_value v;
    if (!reef_read(r, &v))
        return false;
    if (v.type != REEF_MP_BIN)
        return mismatch("bytes", &v);
    *ptr = v.v.bin.ptr;
    *len = v.v.bin.len;
    return true;
}

bool reef_read_array(reef_reader *r, uint32_t *count) {
    reef_mp_value v;
    if (!reef_read(r, &v))
        return false;
    if (v.type != REEF_MP_ARRAY)
        return mismatch("an array", &v);
    *count = v.v.count;
    return true;
}

bool reef_read_map(reef_reader *r, uint32_t *count) {
    reef_mp_value v;
    if (!reef_read(r, &v))
        return false;
    if (v.type != REEF_MP_MAP)
        return mismatch("a map", &v);
    *count = v.v.count;
    return true;
}

/* ------------------------------------------------------------------ writer */

void reef_writer_init(reef_writer *w) {
    w->data = NULL;
    w->len = w->cap = 0;
    w->failed = false;
}

void reef_writer_free(reef_writer *w) {
    free(w->data);
    reef_writer_init(w);
}

/* Room for n more bytes; false (and sticky failure) when it cannot grow. */
static bool reserve(reef_writer *w, size_t n) {
    if (w->failed)
        return false;
    if (w->cap - w->len >= n)
        return true;
    size_t cap = w->cap ? w->cap : 64;
    while (cap - w->len < n) {
        if (cap > SIZE_MAX / 2) {
            w->failed = true;
            return false;
        }
        cap *= 2;
    }
    uint8_t *grown = realloc(w->data, cap);
    if (!grown) {
        w->failed = true;
        return false;
    }
    w->data = grown;
    w->cap = cap;
    return true;
}

static void put_be(reef_writer *w, uint8_t tag, uint64_t v, int n) {
    if (!reserve(w, 1 + (size_t)n))
        return;
    w->data[w->len++] = tag;
    for (int k = n - 1; k >= 0; k--)
        w->data[w->len++] = (uint8_t)(v >> (8 * k));
}

void reef_write_raw(reef_writer *w, const void *data, size_t len) {
    if (!reserve(w, len))
        return;
    if (len)
        memcpy(w->data + w->len, data, len);
    w->len += len;
}

static void put1(reef_writer *w, uint8_t b) { reef_write_raw(w, &b, 1); }

void reef_write_nil(reef_writer *w) { put1(w, 0xc0); }
void reef_write_bool(reef_writer *w, bool x) { put1(w, x ? 0xc3 : 0xc2); }

void reef_write_u64(reef_writer *w, uint64_t x) {
    if (x <= 0x7f)
        put1(w, (uint8_t)x);
    else if (x <= 0xff)
        put_be(w, 0xcc, x, 1);
    else if (x <= 0xffff)
        put_be(w, 0xcd, x, 2);
    else if (x <= 0xffffffffu)
        put_be(w, 0xce, x, 4);
    else
        put_be(w, 0xcf, x, 8);
}

void reef_write_i64(reef_writer *w, int64_t x) {
    if (x >= 0)
        reef_write_u64(w, (uint64_t)x);
    else if (x >= -32)
        put1(w, (uint8_t)(int8_t)x);
    else if (x >= INT8_MIN)
        put_be(w, 0xd0, (uint64_t)x, 1);
    else if (x >= INT16_MIN)
        put_be(w, 0xd1, (uint64_t)x, 2);
    else if (x >= INT32_MIN)
        put_be(w, 0xd2, (uint64_t)x, 4);
    else
        put_be(w, 0xd3, (uint64_t)x, 8);
}

void reef_write_f64(reef_writer *w, double x) {
    uint64_t bits;
    memcpy(&bits, &x, 8);
    put_be(w, 0xcb, bits, 8);
}

void reef_write_f32(reef_writer *w, float x) {
    uint32_t bits;
    memcpy(&bits, &x, 4);
    put_be(w, 0xca, bits, 4);
}

void reef_write_strn(reef_writer *w, const char *s, size_t len) {
    if (len > 0xffffffffu) {
        w->failed = true;
        return;
    }
    if (len <= 31)
        put1(w, (uint8_t)(0xa0 | len));
    else if (len <= 0xff)
        put_be(w, 0xd9, len, 1);
    else if (len <= 0xffff)
        put_be(w, 0xda, len, 2);
    else
        put_be(w, 0xdb, len, 4);
    reef_write_raw(w, s, len);
}

void reef_write_str(reef_writer *w, const char *s) { reef_write_strn(w, s, strlen(s)); }

void reef_write_bin(reef_writer *w, const void *data, size_t len) {
    if (len > 0xffffffffu) {
        w->failed = true;
        return;
    }
    if (len <= 0xff)
        put_be(w, 0xc4, len, 1);
    else if (len <= 0xffff)
        put_be(w, 0xc5, len, 2);
    else
        put_be(w, 0xc6, len, 4);
    reef_write_raw(w, data, len);
}

void reef_write_array(reef_writer *w, uint32_t count) {
    if (count <= 15)
        put1(w, (uint8_t)(0x90 | count));
    else if (count <= 0xffff)
        put_be(w, 0xdc, count, 2);
    else
        put_be(w, 0xdd, count, 4);
}

void reef_write_map(reef_writer *w, uint32_t count) {
    if (count <= 15)
        put1(w, (uint8_t)(0x80 | count));
    else if (count <= 0xffff)
        put_be(w, 0xde, count, 2);
    else
        put_be(w, 0xdf, count, 4);
}
