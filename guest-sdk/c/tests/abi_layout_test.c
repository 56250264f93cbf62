/*
 * Checks the SDK's canonical-ABI constants (src/abi_layout.h) and its error-code list
 * (REEF_CODES in include/reef.h) against tests/golden/abi-layouts.json, the layouts the
 * host's tests compute from wit/. Built for the build machine: abi_layout_test.sh.
 */
#include "../include/reef.h"
#include "../src/abi_layout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEYS 512

static char keys[MAX_KEYS][96];
static long values[MAX_KEYS];
static size_t n_keys;
static int failures;

/* Reads the golden file: one `"name": number,` pair per line (other lines are skipped). */
static void load(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(2);
    }
    char line[256];
    while (fgets(line, sizeof line, f) && n_keys < MAX_KEYS) {
        if (sscanf(line, " \"%95[^\"]\": %ld", keys[n_keys], &values[n_keys]) == 2)
            n_keys++;
    }
    fclose(f);
}

static long golden(const char *key) {
    for (size_t i = 0; i < n_keys; i++)
        if (strcmp(keys[i], key) == 0)
            return values[i];
    fprintf(stderr, "golden file has no %s\n", key);
    failures++;
    return -1;
}

static void expect(const char *key, long want) {
    long got = golden(key);
    if (got != want) {
        fprintf(stderr, "%s: golden %ld, SDK %ld\n", key, got, want);
        failures++;
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s abi-layouts.json\n", argv[0]);
        return 2;
    }
    load(argv[1]);
    expect("size.arg", REEF_ARG_SIZE);
    expect("align.arg", REEF_ARG_ALIGN);
    expect("payload.arg", REEF_VARIANT_PAYLOAD);
    expect("payload.output", REEF_VARIANT_PAYLOAD);
    expect("case.arg.inline", 0);
    expect("case.arg.object", 1);
    expect("case.output.bytes", 0);
    expect("case.output.object", 1);
    expect("size.object-ref", 16);
    expect("offset.object-ref.size", 8);
    expect("offset.failure.code", 0);
    expect("offset.failure.message", REEF_FAILURE_MESSAGE);
    expect("size.code", 1);
    expect("offset.module-info.tasks", 8);
    expect("offset.module-info.actors", 16);
    expect("offset.actor-class.methods", 8);
    static const char *const wide[] = {"put", "object-size", "map-view", "submit",
                                       "actor-create", "actor-lookup", "actor-call"};
    char key[128];
    for (size_t i = 0; i < sizeof wide / sizeof wide[0]; i++) {
        snprintf(key, sizeof key, "payload.host.%s.result", wide[i]);
        expect(key, REEF_WIDE_PAYLOAD);
    }
    expect("payload.host.get.result", REEF_NARROW_PAYLOAD);
    expect("payload.guest.run-task.result", REEF_WIDE_PAYLOAD);
    expect("payload.guest.actor-call.result", REEF_WIDE_PAYLOAD);
    expect("payload.guest.actor-init.result", REEF_NARROW_PAYLOAD);
    size_t n_codes = 0;
    for (size_t i = 0; i < n_keys; i++) {
        const char *k = keys[i];
        bool result = strlen(k) > 7 && strcmp(k + strlen(k) - 7, ".result") == 0;
        if (result && strncmp(k, "size.", 5) == 0 && values[i] > REEF_RET_AREA_SIZE) {
            fprintf(stderr, "%s (%ld) does not fit the return area\n", k, values[i]);
            failures++;
        }
        if (result && strncmp(k, "align.", 6) == 0 && values[i] > REEF_RET_AREA_ALIGN) {
            fprintf(stderr, "%s (%ld) exceeds the return area's alignment\n", k, values[i]);
            failures++;
        }
        if (strncmp(k, "case.code.", 10) == 0)
            n_codes++;
    }
#define CHECK_CODE_(name, wit) expect("case.code." wit, REEF_CODE_##name);
    REEF_CODES(CHECK_CODE_)
#undef CHECK_CODE_
    if (n_codes != REEF_CODE_COUNT_) {
        fprintf(stderr, "the golden file has %zu codes, reef.h %d\n", n_codes, REEF_CODE_COUNT_);
        failures++;
    }
    if (failures) {
        fprintf(stderr, "%d mismatches with %s\n", failures, argv[1]);
        return 1;
    }
    printf("abi layouts: %zu golden values, %d codes: ok\n", n_keys, REEF_CODE_COUNT_);
    return 0;
}
