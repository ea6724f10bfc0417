/* fuzz_driver.c -- replay a libFuzzer target's corpus without libFuzzer.
 *
 * Linked with each fuzz target when RS_FUZZ is off, so every ordinary build
 * runs the decoders over the checked-in corpus (tests/fuzz/corpus/<target>)
 * as a ctest regression test: a crash, a sanitizer report or a broken
 * round-trip oracle (abort) fails it.  Usage: TARGET DIR|FILE...
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int rs_fuzz_file(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "fuzz_driver: %s: cannot open\n", path);
        return -1;
    }
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    size_t got = n > 0 ? fread(buf, 1, (size_t)n, fp) : 0;
    fclose(fp);
    LLVMFuzzerTestOneInput(buf, got);
    /* Every prefix too: truncated inputs are the commonest bad input. */
    for (size_t k = 0; k < got; k += 1 + got / 64)
        LLVMFuzzerTestOneInput(buf, k);
    free(buf);
    return 0;
}

int main(int argc, char **argv) {
    int files = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "fuzz_driver: %s: not found\n", argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (rs_fuzz_file(argv[i])) return 1;
            files++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        struct dirent *de;
        while (d && (de = readdir(d))) {
            if (de->d_name[0] == '.') continue;
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
            if (rs_fuzz_file(path)) return 1;
            files++;
        }
        if (d) closedir(d);
    }
    printf("fuzz_driver: %d corpus file(s) replayed, no failure\n", files);
    return files > 0 ? 0 : 1;
}
