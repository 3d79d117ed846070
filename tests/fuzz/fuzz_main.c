/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Replays fuzz corpora without libFuzzer (systemd's idea): every regular file named on the
 * command line, or found directly in a directory named there, goes through
 * LLVMFuzzerTestOneInput once, in a buffer of exactly its size so ASan sees any over-read.
 * Registered in meson's 'fuzz-regression' suite, so every committed crash reproducer stays
 * fixed. Each input's name goes to stderr first: a crash names its reproducer. Hidden files
 * are skipped; an unreadable input or an empty corpus fails the test.
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
        uint8_t *buf = NULL;
        FILE *f = NULL;
        long len;
        int r = -1;

        f = fopen(path, "rbe");
        if (!f)
                goto out;
        if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
                goto out;
        buf = malloc(len ? (size_t)len : 1);
        if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len)
                goto out;
        fprintf(stderr, "%s (%ld bytes)\n", path, len);
        (void)LLVMFuzzerTestOneInput(buf, (size_t)len); /* libFuzzer ignores it too */
        r = 0;
out:
        if (r < 0)
                perror(path);
        free(buf);
        if (f)
                fclose(f);
        return r;
}

/* Runs every regular file in dir; returns how many, or -1. */
static long run_dir(const char *dir)
{
        struct dirent *de;
        long n = 0;
        DIR *d;

        d = opendir(dir);
        if (!d) {
                perror(dir);
                return -1;
        }
        while (n >= 0 && (de = readdir(d))) {
                struct stat st;
                char *path;

                if (de->d_name[0] == '.')
                        continue;
                if (asprintf(&path, "%s/%s", dir, de->d_name) < 0) {
                        n = -1;
                        break;
                }
                if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
                        n = run_file(path) < 0 ? -1 : n + 1;
                free(path);
        }
        closedir(d);
        return n;
}

int main(int argc, char *argv[])
{
        long total = 0;

        for (int i = 1; i < argc; i++) {
                struct stat st;
                long n;

                if (stat(argv[i], &st) < 0) {
                        perror(argv[i]);
                        return EXIT_FAILURE;
                }
                if (S_ISDIR(st.st_mode))
                        n = run_dir(argv[i]);
                else
                        n = run_file(argv[i]) < 0 ? -1 : 1;
                if (n < 0)
                        return EXIT_FAILURE;
                total += n;
        }
        printf("replayed %ld inputs\n", total);
        return total > 0 ? EXIT_SUCCESS : EXIT_FAILURE; /* an empty corpus is a broken test */
}
