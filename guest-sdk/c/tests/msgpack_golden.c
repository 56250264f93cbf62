/*
 * Drives the SDK's MessagePack reader and writer (src/msgpack.c, compiled natively) for
 * the shared golden vectors: tests/tests/sdk_units.rs reads tests/golden/msgpack.json,
 * sends one request per line on stdin and compares the answers.
 *
 *   E <tokens>   write the tokens with the writer; answers the bytes in hex
 *   D <hex>      read exactly one value (a container with all its elements, no
 *                bytes after it); answers its tokens, or "ERR <message>"
 *
 * Tokens: n (nil), t, f, u:<decimal> (uint), i:<decimal> (negative int),
 * d:<16 hex digits> (float64 bits), g:<8 hex digits> (float32 bits, written only:
 * the reader gives every float as a double), s:<hex of UTF-8>, b:<hex>, a:<count>,
 * m:<count> (pairs).
 */
#include "reef.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char failure[512];

/* The SDK's error recorder (src/reef.c in a guest). */
int reef_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(failure, sizeof failure, fmt, ap);
    va_end(ap);
    return REEF_ERR;
}

static int nibble(char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; }

static size_t unhex(const char *s, size_t n, uint8_t *out) {
    for (size_t i = 0; i + 1 < n; i += 2)
        out[i / 2] = (uint8_t)(nibble(s[i]) << 4 | nibble(s[i + 1]));
    return n / 2;
}

static void put_hex(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
}

static void encode(char *line) {
    reef_writer w;
    reef_writer_init(&w);
    for (char *tok = strtok(line, " "); tok; tok = strtok(NULL, " ")) {
        const char *arg = tok + 2;
        size_t len = strlen(arg);
        uint8_t *buf = malloc(len / 2 + 1);
        switch (tok[0]) {
        case 'n': reef_write_nil(&w); break;
        case 't': reef_write_bool(&w, true); break;
        case 'f': reef_write_bool(&w, false); break;
        case 'u': reef_write_u64(&w, strtoull(arg, NULL, 10)); break;
        case 'i': reef_write_i64(&w, strtoll(arg, NULL, 10)); break;
        case 'd': {
            uint64_t bits = strtoull(arg, NULL, 16);
            double x;
            memcpy(&x, &bits, 8);
            reef_write_f64(&w, x);
            break;
        }
        case 'g': {
            uint32_t bits = (uint32_t)strtoul(arg, NULL, 16);
            float x;
            memcpy(&x, &bits, 4);
            reef_write_f32(&w, x);
            break;
        }
        case 's': reef_write_strn(&w, (const char *)buf, unhex(arg, len, buf)); break;
        case 'b': reef_write_bin(&w, buf, unhex(arg, len, buf)); break;
        case 'a': reef_write_array(&w, (uint32_t)strtoul(arg, NULL, 10)); break;
        case 'm': reef_write_map(&w, (uint32_t)strtoul(arg, NULL, 10)); break;
        default: printf("ERR unknown token %s\n", tok); exit(2);
        }
        free(buf);
    }
    if (w.failed) {
        printf("ERR the writer failed\n");
    } else {
        put_hex(w.data, w.len);
        printf("\n");
    }
    reef_writer_free(&w);
}

static void decode(const char *hex) {
    size_t n = strlen(hex);
    uint8_t *data = malloc(n / 2 + 1);
    reef_reader r;
    reef_reader_init(&r, data, unhex(hex, n, data));
    /* Answer only once the whole value was read: tokens go to a buffer first. */
    char *out = NULL;
    size_t out_len = 0;
    FILE *tokens = open_memstream(&out, &out_len);
    uint64_t pending = 1; /* items still to read */
    bool ok = true;
    while (pending > 0 && ok) {
        reef_mp_value v;
        if (!(ok = reef_read(&r, &v)))
            break;
        pending--;
        switch (v.type) {
        case REEF_MP_NIL: fprintf(tokens, " n"); break;
        case REEF_MP_BOOL: fprintf(tokens, v.v.b ? " t" : " f"); break;
        case REEF_MP_UINT: fprintf(tokens, " u:%" PRIu64, v.v.u); break;
        case REEF_MP_INT: fprintf(tokens, " i:%" PRId64, v.v.i); break;
        case REEF_MP_FLOAT: {
            uint64_t bits;
            memcpy(&bits, &v.v.f, 8);
            fprintf(tokens, " d:%016" PRIx64, bits);
            break;
        }
        case REEF_MP_STR:
        case REEF_MP_BIN:
            fprintf(tokens, " %c:", v.type == REEF_MP_STR ? 's' : 'b');
            for (uint32_t i = 0; i < (v.type == REEF_MP_STR ? v.v.str.len : v.v.bin.len); i++)
                fprintf(tokens, "%02x",
                        v.type == REEF_MP_STR ? (uint8_t)v.v.str.ptr[i] : v.v.bin.ptr[i]);
            break;
        case REEF_MP_ARRAY:
            fprintf(tokens, " a:%" PRIu32, v.v.count);
            pending += v.v.count;
            break;
        case REEF_MP_MAP:
            fprintf(tokens, " m:%" PRIu32, v.v.count);
            pending += 2 * (uint64_t)v.v.count;
            break;
        default:
            ok = reef_fail("unexpected %s", reef_mp_type_name(v.type)) == 0;
        }
    }
    fclose(tokens);
    if (ok && !reef_reader_done(&r))
        ok = reef_fail("bytes after the value") == 0;
    if (ok)
        printf("%s\n", out + (out_len > 0));
    else
        printf("ERR %s\n", failure);
    free(out);
    free(data);
}

int main(void) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        if (line[n - 1] == '\n')
            line[--n] = '\0';
        if (line[0] == 'E')
            encode(line + 1 + (n > 1));
        else if (line[0] == 'D')
            decode(line + 1 + (n > 1));
        else
            printf("ERR unknown request\n");
        fflush(stdout);
    }
    free(line);
    return 0;
}
