/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Replays fuzz corpora without libFuzzer (systemd's idea): every file named on the command
 * line, or found in a directory named there, goes through LLVMFuzzerTestOneInput once.
 * Registered in meson's 'fuzz-regression' suite, so every crash reproducer stays fixed.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
        FILE *f = fopen(path, "rb");
        uint8_t *buf;
        long len;

        if (!f)
                return -1;
        if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
                fclose(f);
                return -1;
        }
        buf = malloc(len ? (size_t)len : 1);
        if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
                free(buf);
                fclose(f);
                return -1;
        }
        fclose(f);
        (void)LLVMFuzzerTestOneInput(buf, (size_t)len);
        free(buf);
        return 0;
}

int main(int argc, char *argv[])
{
        unsigned n = 0;

        for (int i = 1; i < argc; i++) {
                struct stat st;
                struct dirent *de;
                DIR *d;

                if (stat(argv[i], &st) < 0) {
                        perror(argv[i]);
                        return 1;
                }
                if (!S_ISDIR(st.st_mode)) {
                        if (run_file(argv[i]) < 0)
                                return 1;
                        n++;
                        continue;
                }
                d = opendir(argv[i]);
                if (!d)
                        return 1;
                while ((de = readdir(d))) {
                        char path[4096];

                        if (de->d_name[0] == '.')
                                continue;
                        (void)snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
                        if (run_file(path) < 0) {
                                closedir(d);
                                return 1;
                        }
                        n++;
                }
                closedir(d);
        }
        printf("replayed %u inputs\n", n);
        return n ? 0 : 1; /* an empty corpus is a broken test */
}
