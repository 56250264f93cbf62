/*
 * The C piece of the cross-language pipeline.
 *
 * count_tokens(tokens: object) -> map {str: u64}: counts the words of a tokenized text
 * (words joined with "\n", as Python's `tokenize` returns them), reading the object
 * through a zero-copy view: the hash table's keys point into the mapped pages, and only
 * the result map is written. Keys are sorted, so equal inputs give equal bytes. Inline
 * bytes are accepted too.
 *
 * Build: guest-sdk/c/build.sh examples/pipeline/c target/guests/pipeline_c.wasm
 */
#include <reef.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    const char *word; /* into the view, not NUL-terminated */
    uint32_t len;
    uint32_t hash;
    uint64_t count;
} entry;

typedef struct table {
    entry *slots;
    size_t cap; /* a power of two */
    size_t len;
} table;

static uint32_t fnv1a(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static bool grow(table *t) {
    size_t cap = t->cap ? t->cap * 2 : 1024;
    entry *slots = calloc(cap, sizeof(entry));
    if (!slots)
        return false;
    for (size_t i = 0; i < t->cap; i++) {
        entry *e = &t->slots[i];
        if (!e->word)
            continue;
        size_t k = e->hash & (cap - 1);
        while (slots[k].word)
            k = (k + 1) & (cap - 1);
        slots[k] = *e;
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return true;
}

static bool count(table *t, const char *word, size_t len) {
    if ((t->len + 1) * 4 > t->cap * 3 && !grow(t))
        return false;
    uint32_t h = fnv1a(word, len);
    size_t k = h & (t->cap - 1);
    for (;; k = (k + 1) & (t->cap - 1)) {
        entry *e = &t->slots[k];
        if (!e->word) {
            *e = (entry){word, (uint32_t)len, h, 1};
            t->len++;
            return true;
        }
        if (e->hash == h && e->len == len && memcmp(e->word, word, len) == 0) {
            e->count++;
            return true;
        }
    }
}

static int by_word(const void *a, const void *b) {
    const entry *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->word, y->word, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static int count_tokens(const reef_args *args, reef_out *out) {
    const uint8_t *text;
    size_t len;
    reef_view view;
    if (reef_arg_is_object(args, 0)) {
        REEF_TRY(reef_arg_view(args, 0, &view)); /* zero-copy; released when the task returns */
        text = view.data;
        len = view.len;
    } else {
        REEF_TRY(reef_arg_bytes(args, 0, &text, &len));
    }

    table t = {0};
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || text[i] == '\n') {
            if (i > start && !count(&t, (const char *)text + start, i - start)) {
                free(t.slots);
                return reef_fail("out of memory counting %zu distinct words", t.len);
            }
            start = i + 1;
        }
    }

    /* Compact the used slots to the front and sort them by word. */
    size_t n = 0;
    for (size_t i = 0; i < t.cap; i++)
        if (t.slots[i].word)
            t.slots[n++] = t.slots[i];
    qsort(t.slots, n, sizeof(entry), by_word);

    reef_writer w;
    reef_writer_init(&w);
    reef_write_map(&w, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        reef_write_strn(&w, t.slots[i].word, t.slots[i].len);
        reef_write_u64(&w, t.slots[i].count);
    }
    free(t.slots);
    reef_log(REEF_LOG_INFO, "count_tokens: %zu bytes, %zu distinct words", len, n);
    return reef_return_msgpack(out, &w);
}

static const reef_task tasks[] = {REEF_TASK(count_tokens)};

REEF_MODULE_TASKS(tasks);
