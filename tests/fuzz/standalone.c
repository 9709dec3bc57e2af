/* SPDX-License-Identifier: Apache-2.0 */
/* A driver for the libFuzzer targets when the compiler has no -fsanitize=fuzzer (gcc): it feeds
 * each file of the given folders (the corpus) to LLVMFuzzerTestOneInput, then every prefix of
 * each file (truncation is the commonest real-world damage) and a fixed number of
 * pseudo-random mutations of it, so the target runs under ASan/UBSan in every ctest run. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0) {
        fclose(f);
        return;
    }
    uint8_t *data = malloc((size_t)n + 1);
    size_t got = fread(data, 1, (size_t)n, f);
    fclose(f);
    LLVMFuzzerTestOneInput(data, got);
    for (size_t cut = 0; cut < got; cut += 1 + got / 64) {
        uint8_t *copy = malloc(cut + 1);
        memcpy(copy, data, cut);
        LLVMFuzzerTestOneInput(copy, cut);
        free(copy);
    }
    uint8_t *mut = malloc(got + 1);
    for (int round = 0; round < 200 && got > 0; round++) {
        memcpy(mut, data, got);
        int flips = 1 + (int)(next_rand() % 8);
        for (int i = 0; i < flips; i++) {
            mut[next_rand() % got] = (uint8_t)next_rand();
        }
        LLVMFuzzerTestOneInput(mut, got);
    }
    free(mut);
    free(data);
}

int main(int argc, char **argv)
{
    int files = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "fuzz: no corpus at %s\n", argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            run_file(argv[i]);
            files++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        struct dirent *e;
        while (d != NULL && (e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') {
                continue;
            }
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
            run_file(path);
            files++;
        }
        if (d != NULL) {
            closedir(d);
        }
    }
    LLVMFuzzerTestOneInput((const uint8_t *)"", 0);
    printf("fuzz: ran %d corpus files with prefixes and mutations\n", files);
    return files > 0 ? 0 : 1;
}
