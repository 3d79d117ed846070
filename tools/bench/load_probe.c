/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Model-loading patterns for tools/bench/run (issue 17) on a safetensors-shaped file
 * (8-byte little-endian header length, JSON header whose tensors carry "data_offsets"
 * [begin, end) relative to the data that follows the header). Timed in-process
 * (CLOCK_MONOTONIC) from open to the last byte; prints one line "BYTES SECONDS".
 *
 *   load-probe seq FILE             header, then read() of the data in 1 MiB pieces
 *   load-probe mmap FILE THREADS    mmap; THREADS threads take tensors in file order from a
 *                                   shared counter and copy each out of the mapping
 *   load-probe pread FILE THREADS   THREADS threads on one fd take 4 MiB pieces of the data
 *                                   in order from a shared counter and pread them
 *   load-probe shuffled FILE THREADS  THREADS threads on one fd take whole tensors in a fixed
 *                                   shuffled order (a loader walking its model's parameters,
 *                                   not the file) and pread each in 4 MiB pieces
 *
 * The header is checked against the file (offsets inside the data, in order); a bad one is
 * an error, not a guess.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "prsmfs/parse.h"

#define PIECE       (4u << 20)
#define MAX_THREADS 64
#define MAX_HEADER  (100u << 20)

struct span {
        uint64_t begin, end; /* absolute file offsets */
};

struct job {
        int fd;
        const unsigned char *map;
        struct span *spans;
        size_t nspans;
        uint64_t data_begin, data_end;
        size_t *order; /* shuffled: the tensors' indices in the order they are loaded */
        atomic_size_t next;
        atomic_uint_fast64_t sum;
        atomic_int failed;
};

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_span(const void *a, const void *b)
{
        const struct span *x = a, *y = b;

        return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static int read_full(int fd, void *buf, size_t len, off_t off)
{
        size_t done = 0;

        while (done < len) {
                ssize_t n = pread(fd, (char *)buf + done, len - done, off + (off_t)done);

                if (n <= 0)
                        return -1;
                done += (size_t)n;
        }
        return 0;
}

/* the tensor table, sorted by offset; every span inside [data_begin, size) */
static int load_header(struct job *job, uint64_t size)
{
        unsigned char len_le[8];
        uint64_t hlen = 0;
        json_error_t err;
        const char *name;
        json_t *root, *t;
        char *text;

        if (size < 8 || read_full(job->fd, len_le, 8, 0) < 0)
                return -1;
        for (int i = 7; i >= 0; i--)
                hlen = hlen << 8 | len_le[i];
        if (hlen == 0 || hlen > MAX_HEADER || hlen > size - 8) {
                fprintf(stderr, "load-probe: header length %llu does not fit the file\n",
                        (unsigned long long)hlen);
                return -1;
        }
        text = malloc(hlen);
        if (!text || read_full(job->fd, text, hlen, 8) < 0) {
                free(text);
                return -1;
        }
        root = json_loadb(text, hlen, 0, &err);
        free(text);
        if (!json_is_object(root)) {
                fprintf(stderr, "load-probe: header is not a JSON object: %s\n", err.text);
                json_decref(root);
                return -1;
        }
        job->data_begin = 8 + hlen;
        job->data_end = size;
        job->spans = calloc(json_object_size(root) + 1, sizeof(*job->spans));
        if (!job->spans) {
                json_decref(root);
                return -1;
        }
        json_object_foreach(root, name, t)
        {
                json_t *off = json_object_get(t, "data_offsets");
                json_int_t b, e;

                if (strcmp(name, "__metadata__") == 0)
                        continue;
                if (!json_is_array(off) || json_array_size(off) != 2 ||
                    !json_is_integer(json_array_get(off, 0)) ||
                    !json_is_integer(json_array_get(off, 1))) {
                        fprintf(stderr, "load-probe: tensor %s has no data_offsets\n", name);
                        json_decref(root);
                        return -1;
                }
                b = json_integer_value(json_array_get(off, 0));
                e = json_integer_value(json_array_get(off, 1));
                if (b < 0 || e < b || (uint64_t)e > size - job->data_begin) {
                        fprintf(stderr, "load-probe: tensor %s is outside the data\n", name);
                        json_decref(root);
                        return -1;
                }
                job->spans[job->nspans].begin = job->data_begin + (uint64_t)b;
                job->spans[job->nspans].end = job->data_begin + (uint64_t)e;
                job->nspans++;
        }
        json_decref(root);
        qsort(job->spans, job->nspans, sizeof(*job->spans), cmp_span);
        return 0;
}

/* Tensor by tensor, in file order or job->order's, each in PIECE pieces: copied out of the
 * mapping (mmap) or pread from the shared fd (shuffled). */
static void *tensor_worker(void *arg)
{
        struct job *job = arg;
        unsigned char *buf = malloc(PIECE);
        uint64_t sum = 0;
        size_t i;

        if (!buf) {
                atomic_store(&job->failed, 1);
                return NULL;
        }
        while ((i = atomic_fetch_add(&job->next, 1)) < job->nspans) {
                const struct span *t = &job->spans[job->order ? job->order[i] : i];

                for (uint64_t off = t->begin; off < t->end; off += PIECE) {
                        size_t n = t->end - off < PIECE ? t->end - off : PIECE;

                        if (job->map)
                                memcpy(buf, job->map + off, n);
                        else if (read_full(job->fd, buf, n, (off_t)off) < 0) {
                                perror("pread");
                                atomic_store(&job->failed, 1);
                                goto out;
                        }
                        sum += buf[0] + buf[n - 1];
                }
        }
out:
        atomic_fetch_add(&job->sum, sum);
        free(buf);
        return NULL;
}

static void *pread_worker(void *arg)
{
        struct job *job = arg;
        uint64_t pieces = (job->data_end - job->data_begin + PIECE - 1) / PIECE, sum = 0;
        unsigned char *buf = malloc(PIECE);
        size_t i;

        if (!buf) {
                atomic_store(&job->failed, 1);
                return NULL;
        }
        while ((i = atomic_fetch_add(&job->next, 1)) < pieces) {
                uint64_t off = job->data_begin + (uint64_t)i * PIECE;
                size_t n = job->data_end - off < PIECE ? job->data_end - off : PIECE;

                if (read_full(job->fd, buf, n, (off_t)off) < 0) {
                        perror("pread");
                        atomic_store(&job->failed, 1);
                        break;
                }
                sum += buf[0] + buf[n - 1];
        }
        atomic_fetch_add(&job->sum, sum);
        free(buf);
        return NULL;
}

/* the same permutation every run (Fisher-Yates driven by a 64-bit LCG) */
static int shuffle(struct job *job)
{
        uint64_t x = 0x9e3779b97f4a7c15ull;

        job->order = calloc(job->nspans ? job->nspans : 1, sizeof(*job->order));
        if (!job->order)
                return -1;
        for (size_t i = 0; i < job->nspans; i++)
                job->order[i] = i;
        for (size_t i = job->nspans; i > 1; i--) {
                size_t j, tmp;

                x = x * 6364136223846793005ull + 1442695040888963407ull;
                j = (size_t)((x >> 33) % i);
                tmp = job->order[i - 1];
                job->order[i - 1] = job->order[j];
                job->order[j] = tmp;
        }
        return 0;
}

static int run_threads(struct job *job, unsigned threads, void *(*fn)(void *))
{
        pthread_t tid[MAX_THREADS];
        unsigned started = 0;

        for (; started < threads; started++)
                if (pthread_create(&tid[started], NULL, fn, job) != 0) {
                        atomic_store(&job->failed, 1);
                        break;
                }
        for (unsigned i = 0; i < started; i++)
                pthread_join(tid[i], NULL);
        return atomic_load(&job->failed) ? -1 : 0;
}

static int usage(void)
{
        fprintf(stderr, "usage: load-probe seq FILE\n"
                        "       load-probe mmap|pread|shuffled FILE THREADS\n");
        return 2;
}

int main(int argc, char *argv[])
{
        struct job job = { .fd = -1 };
        uint64_t threads = 1;
        struct stat st;
        double t0, t1;
        int ret = 1;

        if (argc < 3)
                return usage();
        if (strcmp(argv[1], "seq") != 0 &&
            (argc < 4 || parse_u64(argv[3], &threads) < 0 || threads < 1 || threads > MAX_THREADS))
                return usage();
        t0 = now_s();
        job.fd = open(argv[2], O_RDONLY | O_CLOEXEC);
        if (job.fd < 0 || fstat(job.fd, &st) < 0) {
                perror(argv[2]);
                return 1;
        }
        if (load_header(&job, (uint64_t)st.st_size) < 0)
                goto out;
        if (strcmp(argv[1], "seq") == 0) {
                unsigned char *buf = malloc(1u << 20);
                uint64_t sum = 0;
                ssize_t n;

                if (!buf || lseek(job.fd, (off_t)job.data_begin, SEEK_SET) < 0) {
                        free(buf);
                        goto out;
                }
                while ((n = read(job.fd, buf, 1u << 20)) > 0)
                        sum += buf[0];
                free(buf);
                if (n < 0) {
                        perror("read");
                        goto out;
                }
                job.sum = sum;
        } else if (strcmp(argv[1], "mmap") == 0) {
                job.map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, job.fd, 0);
                if (job.map == MAP_FAILED) {
                        perror("mmap");
                        goto out;
                }
                if (run_threads(&job, (unsigned)threads, tensor_worker) < 0)
                        goto out;
        } else if (strcmp(argv[1], "pread") == 0) {
                if (run_threads(&job, (unsigned)threads, pread_worker) < 0)
                        goto out;
        } else if (strcmp(argv[1], "shuffled") == 0) {
                if (shuffle(&job) < 0 || run_threads(&job, (unsigned)threads, tensor_worker) < 0)
                        goto out;
        } else {
                ret = usage();
                goto out;
        }
        t1 = now_s();
        printf("%llu %.6f\n", (unsigned long long)st.st_size, t1 - t0);
        fprintf(stderr, "checksum %llu\n", (unsigned long long)atomic_load(&job.sum));
        ret = 0;
out:
        if (job.map && job.map != MAP_FAILED)
                munmap((void *)job.map, (size_t)st.st_size);
        free(job.order);
        free(job.spans);
        close(job.fd);
        return ret;
}
