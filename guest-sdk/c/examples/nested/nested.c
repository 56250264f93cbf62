/*
 * Nested calls from C: tasks that submit tasks, create, find and call actors, store
 * objects and view them, log and print.
 *
 *   square(x: f64) -> f64
 *   sum_of_squares(n: u64) -> f64          submits square(1..n) and adds the results
 *   put_and_view(n: u64) -> f64            puts the f64s 0..n, views the object, sums it
 *   put_text(text: str) -> object          returns an object it stored (no copy)
 *   counter_roundtrip(name: str) -> u64    Counter(5) named `name`, looked up, incr x3 -> 8
 *   hello(name: str) -> nil                printf + reef_log
 *   mp_roundtrip(v) -> v                   decodes MessagePack item by item and re-encodes it
 *   scribble(obj: object) -> u64           writes 0xEE over its view (private pages), returns byte 0
 *   Counter(start: u64 = 0)                incr() -> u64, get() -> u64
 *   Holder(obj: object)                    keeps a view across calls: byte_sum() -> u64, release() -> nil
 */
#include <reef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int square(const reef_args *args, reef_out *out) {
    double x;
    REEF_TRY(reef_arg_f64(args, 0, &x));
    return reef_return_f64(out, x * x);
}

static int sum_of_squares(const reef_args *args, reef_out *out) {
    uint64_t n;
    REEF_TRY(reef_arg_u64(args, 0, &n));
    if (n > 1000)
        return reef_fail_code(REEF_CODE_BAD_ARGUMENT, "n must be at most 1000, got %llu", (unsigned long long)n);
    reef_object_id ids[1000];
    for (uint64_t i = 0; i < n; i++) {
        reef_callarg arg = reef_pass_f64((double)(i + 1));
        REEF_TRY(reef_submit("", "square", &arg, 1, &ids[i]));
    }
    double sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        double x;
        REEF_TRY(reef_get_f64(ids[i], &x));
        sum += x;
    }
    return reef_return_f64(out, sum);
}

static int put_and_view(const reef_args *args, reef_out *out) {
    uint64_t n;
    REEF_TRY(reef_arg_u64(args, 0, &n));
    double *xs = malloc(n * sizeof(double) + 1);
    if (!xs)
        return reef_fail("out of memory");
    for (uint64_t i = 0; i < n; i++)
        xs[i] = (double)i;
    reef_object obj;
    bool ok = reef_put(xs, n * sizeof(double), &obj);
    free(xs);
    REEF_TRY(ok);
    uint64_t size;
    REEF_TRY(reef_object_size(obj.id, &size));
    if (size != obj.size)
        return reef_fail("object-size says %llu, put said %llu", (unsigned long long)size,
                         (unsigned long long)obj.size);
    reef_view view;
    REEF_TRY(reef_view_map(obj, &view));
    size_t count;
    const double *ys = reef_view_f64s(&view, &count);
    double sum = 0;
    for (size_t i = 0; ys && i < count; i++)
        sum += ys[i];
    reef_view_release(&view);
    reef_view_release(&view); /* a second release is a no-op */
    return reef_return_f64(out, sum);
}

static int put_text(const reef_args *args, reef_out *out) {
    const char *text;
    size_t len;
    reef_object obj;
    REEF_TRY(reef_arg_str(args, 0, &text, &len));
    REEF_TRY(reef_put(text, len, &obj));
    return reef_return_object(out, obj.id);
}

static int counter_roundtrip(const reef_args *args, reef_out *out) {
    const char *name;
    reef_actor_id created, found;
    reef_object_id r = 0;
    REEF_TRY(reef_arg_str(args, 0, &name, NULL));
    reef_callarg start = reef_pass_u64(5);
    REEF_TRY(reef_actor_create("", "Counter", &start, 1, name, &created));
    REEF_TRY(reef_actor_lookup(name, &found));
    if (found != created)
        return reef_fail("lookup found actor %llu, created %llu", (unsigned long long)found,
                         (unsigned long long)created);
    for (int i = 0; i < 3; i++)
        REEF_TRY(reef_actor_call(found, "incr", NULL, 0, &r));
    uint64_t value;
    REEF_TRY(reef_get_u64(r, &value));
    return reef_return_u64(out, value);
}

static int hello(const reef_args *args, reef_out *out) {
    const char *name;
    REEF_TRY(reef_arg_str(args, 0, &name, NULL));
    printf("hello from C, %s", name); /* no newline: the SDK flushes stdout after each call */
    reef_log(REEF_LOG_WARN, "logged for %s", name);
    return REEF_OK; /* no result set: nil */
}

static int mp_roundtrip(const reef_args *args, reef_out *out) {
    reef_reader r;
    reef_writer w;
    REEF_TRY(reef_arg_reader(args, 0, &r));
    reef_writer_init(&w);
    while (!reef_reader_done(&r)) {
        reef_mp_value v;
        if (!reef_read(&r, &v)) {
            reef_writer_free(&w);
            return reef_fail_code(REEF_CODE_BAD_ARGUMENT, "argument 0: %s", reef_error());
        }
        switch (v.type) {
        case REEF_MP_NIL: reef_write_nil(&w); break;
        case REEF_MP_BOOL: reef_write_bool(&w, v.v.b); break;
        case REEF_MP_UINT: reef_write_u64(&w, v.v.u); break;
        case REEF_MP_INT: reef_write_i64(&w, v.v.i); break;
        case REEF_MP_FLOAT: reef_write_f64(&w, v.v.f); break;
        case REEF_MP_STR: reef_write_strn(&w, v.v.str.ptr, v.v.str.len); break;
        case REEF_MP_BIN: reef_write_bin(&w, v.v.bin.ptr, v.v.bin.len); break;
        case REEF_MP_ARRAY: reef_write_array(&w, v.v.count); break;
        case REEF_MP_MAP: reef_write_map(&w, v.v.count); break;
        case REEF_MP_EXT:
            reef_writer_free(&w);
            return reef_fail_code(REEF_CODE_BAD_ARGUMENT, "argument 0: ext values are not supported here");
        }
    }
    return reef_return_msgpack(out, &w);
}

static int scribble(const reef_args *args, reef_out *out) {
    reef_view view;
    REEF_TRY(reef_arg_view(args, 0, &view));
    if (view.len == 0)
        return reef_fail_code(REEF_CODE_BAD_ARGUMENT, "argument 0: scribble needs a non-empty object");
    /* The mapping is private: these writes never reach the stored object. */
    memset((uint8_t *)view.data, 0xEE, view.len);
    return reef_return_u64(out, view.data[0]);
}

typedef struct counter {
    uint64_t n;
} counter;

static int counter_init(const reef_args *args, void **self) {
    counter *c = calloc(1, sizeof *c);
    if (!c)
        return reef_fail("out of memory");
    if (!reef_arg_is_nil(args, 0) && !reef_arg_u64(args, 0, &c->n)) {
        free(c);
        return REEF_ERR;
    }
    *self = c;
    return REEF_OK;
}

static int counter_incr(void *self, const reef_args *args, reef_out *out) {
    return reef_return_u64(out, ++((counter *)self)->n);
}

static int counter_get(void *self, const reef_args *args, reef_out *out) {
    return reef_return_u64(out, ((counter *)self)->n);
}

typedef struct holder {
    reef_view view;
    bool live;
} holder;

static int holder_init(const reef_args *args, void **self) {
    reef_object obj;
    REEF_TRY(reef_arg_object(args, 0, &obj));
    holder *h = calloc(1, sizeof *h);
    if (!h)
        return reef_fail("out of memory");
    if (!reef_view_map(obj, &h->view)) { /* lives until release(), across calls */
        free(h);
        return REEF_ERR;
    }
    h->live = true;
    *self = h;
    return REEF_OK;
}

static int holder_byte_sum(void *self, const reef_args *args, reef_out *out) {
    holder *h = self;
    if (!h->live)
        return reef_fail("the view was released");
    uint64_t sum = 0;
    for (size_t i = 0; i < h->view.len; i++)
        sum += h->view.data[i];
    return reef_return_u64(out, sum);
}

static int holder_release(void *self, const reef_args *args, reef_out *out) {
    holder *h = self;
    reef_view_release(&h->view);
    h->live = false;
    return REEF_OK;
}

static const reef_method holder_methods[] = {
    REEF_METHOD("byte_sum", holder_byte_sum),
    REEF_METHOD("release", holder_release),
};

static const reef_method counter_methods[] = {
    REEF_METHOD("incr", counter_incr),
    REEF_METHOD("get", counter_get),
};

static const reef_task tasks[] = {
    REEF_TASK(square),   REEF_TASK(sum_of_squares),    REEF_TASK(put_and_view),
    REEF_TASK(put_text), REEF_TASK(counter_roundtrip), REEF_TASK(hello),
    REEF_TASK(mp_roundtrip), REEF_TASK(scribble),
};

static const reef_actor_class actors[] = {
    REEF_ACTOR("Counter", counter_init, counter_methods),
    REEF_ACTOR("Holder", holder_init, holder_methods),
};

REEF_MODULE(tasks, actors);
