/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * prsmctl provenance / rewards (docs/prsm.md).
 *
 * provenance PATH checks what the daemon sends rather than trusting it: every record's
 * signature under the daemon's key, and every parent hash against the record before it in
 * the log (whose signature is checked too). --verify checks an exported document with only
 * a public key, without a daemon.
 */
#include "prov.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "prsmfs/parse.h"
#include "prsmfs/prsm.h"

#define DOC_MAX (256u * 1024 * 1024)

static const char *field(json_t *o, const char *key)
{
        return json_string_value(json_object_get(o, key));
}

/* What is wrong with record (NULL: nothing): its signature under key, and its parent against
 * prev (the record before it in the log; NULL when not known). */
static const char *record_problem(const char *record, const char *key, const char *prev,
                                  bool prev_known)
{
        char hash[PRSM_HASH_HEX];
        json_t *o;
        const char *parent, *why = NULL;
        int r = prsm_record_verify(record, key);

        if (r == -EBADMSG)
                return "is not a JSON record";
        if (r < 0)
                return "signature does not verify (altered, or signed by another key)";
        o = json_loads(record, 0, NULL);
        parent = field(o, "parent");
        if (prev_known && !prev && parent)
                why = "names a parent record that is not in the log";
        else if (prev && prsm_record_verify(prev, key) < 0)
                why = "follows a record whose signature does not verify";
        else if (prev && (prsm_record_hash(prev, hash) < 0 || !parent || strcmp(parent, hash)))
                why = "parent hash does not match the record before it (a record was altered, "
                      "removed or inserted)";
        json_decref(o);
        return why;
}

static void print_time(int64_t ns)
{
        time_t t = (time_t)(ns / 1000000000);
        struct tm tm;
        char buf[32];

        if (gmtime_r(&t, &tm) && strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm))
                printf("%-20s ", buf);
        else
                printf("%-20s ", "?");
}

static void print_row(json_t *o, json_int_t seq, const char *problem)
{
        const char *cid = field(o, "cid"), *op = field(o, "op");

        printf("%-6lld ", (long long)seq);
        print_time((int64_t)json_integer_value(json_object_get(o, "time_ns")));
        printf("%-8s %-10s %-24.24s %s", op ? op : "?", problem ? "BAD" : "ok",
               field(o, "creator") ? field(o, "creator") : "?", cid ? cid : "-");
        if (op && strcmp(op, "rename") == 0 && field(o, "old_path"))
                printf("  (from %s)", field(o, "old_path"));
        printf("\n");
}

static int provenance_show(const struct prov_opts *o, const char *path, char *sock, size_t size)
{
        char rel[4096];
        json_t *req, *reply = NULL, *chain, *e, *out = NULL;
        const char *key;
        json_int_t first;
        size_t i;
        int bad = 0;

        if (!sock[0]) {
                if (prsmctl_locate(path, sock, size, rel, sizeof(rel)) < 0)
                        return 1;
                path = rel;
        }
        req = json_pack("{s:s, s:s}", "cmd", "provenance", "path", path);
        reply = req ? prsmctl_call(sock, req) : NULL;
        json_decref(req);
        if (!reply)
                return 1;
        if (!json_is_true(json_object_get(reply, "ok"))) {
                fprintf(stderr, "prsmctl: provenance: %s\n", field(reply, "error"));
                json_decref(reply);
                return 1;
        }
        key = field(reply, "key");
        chain = json_object_get(reply, "chain");
        first = json_integer_value(json_object_get(reply, "first_seq"));
        if (o->json)
                out = json_array();
        else
                printf("%-6s %-20s %-8s %-10s %-24s %s\n", "SEQ", "TIME (UTC)", "OP", "SIGNATURE",
                       "CREATOR", "CID");
        json_array_foreach(chain, i, e)
        {
                const char *record = field(e, "record"), *prev = field(e, "prev");
                json_int_t seq = json_integer_value(json_object_get(e, "seq"));
                const char *why = record_problem(record ? record : "", key, prev, true);
                json_t *r = record ? json_loads(record, 0, NULL) : NULL;

                if (!why && !prev && seq != first)
                        why = "has no record before it in the log, which starts earlier";
                if (why) {
                        fprintf(stderr, "prsmctl: provenance: record %lld of %s: %s\n",
                                (long long)seq, path, why);
                        bad = 1;
                }
                if (out) {
                        json_t *row = json_is_object(r) ? json_copy(r) : json_object();

                        json_object_set_new(row, "seq", json_integer(seq));
                        json_object_set_new(row, "verified", json_boolean(!why));
                        if (why)
                                json_object_set_new(row, "problem", json_string(why));
                        json_array_append_new(out, row);
                } else
                        print_row(r, seq, why);
                json_decref(r);
        }
        if (out) {
                json_dumpf(out, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
                fputc('\n', stdout);
                json_decref(out);
        } else if (!json_array_size(chain))
                printf("(no records for %s)\n", path);
        json_decref(reply);
        return bad;
}

static int write_file(const char *file, const char *text, bool gzip)
{
        size_t len = strlen(text);

        if (gzip) {
                gzFile g = gzopen(file, "wbe");

                if (!g || gzwrite(g, text, (unsigned)len) != (int)len || gzputc(g, '\n') < 0) {
                        if (g)
                                (void)gzclose(g);
                        return -1;
                }
                return gzclose(g) == Z_OK ? 0 : -1;
        } else {
                FILE *f = fopen(file, "we");

                if (!f)
                        return -1;
                if (fwrite(text, 1, len, f) != len || fputc('\n', f) == EOF) {
                        fclose(f);
                        return -1;
                }
                return fclose(f) == 0 ? 0 : -1;
        }
}

static bool ends_with(const char *s, const char *tail)
{
        size_t a = strlen(s), b = strlen(tail);

        return a >= b && strcmp(s + a - b, tail) == 0;
}

static int provenance_export(const struct prov_opts *o, const char *path, char *sock, size_t size)
{
        char rel[4096];
        json_t *req, *reply;
        const char *doc;
        int ret = 1;

        if (!sock[0]) {
                if (prsmctl_locate(path, sock, size, rel, sizeof(rel)) < 0)
                        return 1;
                path = rel;
        }
        /* the mount root exports the whole log; a path, its own records */
        req = strcmp(path, "/") == 0 || !path[0]
                      ? json_pack("{s:s}", "cmd", "provenance_export")
                      : json_pack("{s:s, s:s}", "cmd", "provenance_export", "path", path);
        /* the daemon adds the document to the node as one object (docs/prsm.md) */
        if (req && o->publish && json_object_set_new(req, "publish", json_true()) < 0) {
                json_decref(req);
                req = NULL;
        }
        reply = req ? prsmctl_call(sock, req) : NULL;
        json_decref(req);
        if (!reply)
                return 1;
        doc = field(reply, "document");
        if (!json_is_true(json_object_get(reply, "ok")) || !doc)
                fprintf(stderr, "prsmctl: provenance: %s\n", field(reply, "error"));
        else if (o->export_file &&
                 write_file(o->export_file, doc, o->gzip || ends_with(o->export_file, ".gz")) < 0)
                fprintf(stderr, "prsmctl: provenance: cannot write %s: %m\n", o->export_file);
        else if (o->json && o->publish)
                ret = printf("{\"cid\": \"%s\", \"records\": %lld}\n", field(reply, "cid"),
                             (long long)json_integer_value(json_object_get(reply, "records"))) < 0;
        else {
                if (o->export_file)
                        printf("%lld records written to %s\n",
                               (long long)json_integer_value(json_object_get(reply, "records")),
                               o->export_file);
                if (o->publish)
                        printf("%lld records published as %s\n",
                               (long long)json_integer_value(json_object_get(reply, "records")),
                               field(reply, "cid"));
                ret = 0;
        }
        json_decref(reply);
        return ret;
}

/* The whole of a file, gzip'd or not (gzread reads both), NUL-terminated. */
static char *read_doc(const char *file)
{
        gzFile g = gzopen(file, "rbe");
        size_t len = 0, cap = 1 << 16;
        char *buf = malloc(cap);
        int n;

        if (!g || !buf) {
                if (g)
                        (void)gzclose(g);
                free(buf);
                return NULL;
        }
        while ((n = gzread(g, buf + len, (unsigned)(cap - len - 1))) > 0) {
                len += (size_t)n;
                if (len + 1 == cap) {
                        char *p = cap < DOC_MAX ? realloc(buf, cap * 2) : NULL;

                        if (!p) {
                                n = -1;
                                break;
                        }
                        buf = p;
                        cap *= 2;
                }
        }
        (void)gzclose(g);
        if (n < 0) {
                free(buf);
                return NULL;
        }
        buf[len] = '\0';
        return buf;
}

/* --pubkey: the key id itself, or a file whose first line is it. */
static int load_pubkey(const char *arg, char *out, size_t size)
{
        FILE *f;

        if (strncmp(arg, "ed25519:", 8) == 0) {
                (void)snprintf(out, size, "%s", arg);
                return 0;
        }
        f = fopen(arg, "re");
        if (!f || !fgets(out, (int)size, f)) {
                if (f)
                        fclose(f);
                return -1;
        }
        fclose(f);
        out[strcspn(out, "\r\n")] = '\0';
        return strncmp(out, "ed25519:", 8) == 0 ? 0 : -1;
}

static int provenance_verify(const struct prov_opts *o)
{
        char key[PRSM_KEY_ID_MAX + 8], *text = NULL, *prev_text = NULL;
        json_t *doc = NULL, *records, *e;
        json_int_t prev_seq = -1;
        size_t i, n_ok = 0;
        int bad = 0;

        if (!o->pubkey || load_pubkey(o->pubkey, key, sizeof(key)) < 0) {
                fprintf(stderr, "prsmctl: provenance: --verify needs --pubkey ed25519:<64 hex "
                                "digits> (or a file holding it)\n");
                return 2;
        }
        text = read_doc(o->verify_file);
        doc = text ? json_loads(text, 0, NULL) : NULL;
        if (!doc) {
                fprintf(stderr, "prsmctl: provenance: %s: cannot read a JSON document\n",
                        o->verify_file);
                free(text);
                return 1;
        }
        if (prsm_record_verify(text, key) < 0) {
                fprintf(stderr,
                        "prsmctl: provenance: %s: the document's signature does not "
                        "verify with %s\n",
                        o->verify_file, key);
                bad = 1;
        }
        records = json_object_get(doc, "records");
        json_array_foreach(records, i, e)
        {
                char *rec = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS);
                json_int_t seq = json_integer_value(json_object_get(e, "seq"));
                /* parents are checked between records that follow each other in the log */
                bool follows = prev_text && seq == prev_seq + 1;
                const char *why = rec ? record_problem(rec, key, follows ? prev_text : NULL, false)
                                      : "cannot be encoded";

                if (why) {
                        fprintf(stderr, "prsmctl: provenance: record %lld (%s %s): %s\n",
                                (long long)seq, field(e, "op") ? field(e, "op") : "?",
                                field(e, "path") ? field(e, "path") : "?", why);
                        bad = 1;
                } else
                        n_ok++;
                free(prev_text);
                prev_text = rec;
                prev_seq = seq;
        }
        if (!bad)
                printf("%zu records verified with %s\n", n_ok, key);
        free(prev_text);
        free(text);
        json_decref(doc);
        return bad;
}

int prov_provenance(const struct prov_opts *o, const char *path, char *sock, size_t size)
{
        if (o->verify_file)
                return provenance_verify(o);
        if (o->export_file || o->publish)
                return provenance_export(o, path, sock, size);
        return provenance_show(o, path, sock, size);
}

/* --since: seconds since the epoch, a time ago ("90s", "30m", "12h", "7d"), or a UTC time
 * "YYYY-MM-DDTHH:MM:SS[Z]". */
static int parse_since(const char *s, int64_t *ret)
{
        static const struct {
                char suffix;
                uint64_t sec;
        } units[] = { { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 } };
        size_t len = strlen(s);
        struct tm tm = { 0 };
        uint64_t v;
        char num[32];

        if (parse_u64(s, &v) == 0 && v <= INT64_MAX) {
                *ret = (int64_t)v;
                return 0;
        }
        for (size_t i = 0; len > 1 && len < sizeof(num) && i < sizeof(units) / sizeof(units[0]);
             i++)
                if (s[len - 1] == units[i].suffix) {
                        memcpy(num, s, len - 1);
                        num[len - 1] = '\0';
                        if (parse_u64(num, &v) < 0 || v > (uint64_t)time(NULL) / units[i].sec)
                                return -1;
                        *ret = (int64_t)time(NULL) - (int64_t)(v * units[i].sec);
                        return 0;
                }
        {
                const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);

                if (end && (!*end || strcmp(end, "Z") == 0)) {
                        *ret = (int64_t)timegm(&tm);
                        return 0;
                }
        }
        return -1;
}

int prov_rewards(const struct prov_opts *o, const char *path, char *sock, size_t size)
{
        char rel[4096];
        int64_t since = 0;
        json_t *req, *reply, *list, *e;
        size_t i;

        if (o->since && parse_since(o->since, &since) < 0) {
                fprintf(stderr,
                        "prsmctl: rewards: --since '%s': expected seconds since the "
                        "epoch, a time ago (30m, 12h, 7d) or YYYY-MM-DDTHH:MM:SSZ\n",
                        o->since);
                return 2;
        }
        if (!sock[0] && prsmctl_locate(path, sock, size, rel, sizeof(rel)) < 0)
                return 1;
        req = json_pack("{s:s, s:I}", "cmd", "rewards", "since", (json_int_t)since);
        reply = req ? prsmctl_call(sock, req) : NULL;
        json_decref(req);
        if (!reply)
                return 1;
        if (!json_is_true(json_object_get(reply, "ok"))) {
                fprintf(stderr, "prsmctl: rewards: %s\n", field(reply, "error"));
                json_decref(reply);
                return 1;
        }
        if (o->json) {
                json_object_del(reply, "ok");
                json_dumpf(reply, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
                fputc('\n', stdout);
                json_decref(reply);
                return 0;
        }
        printf("royalty rate %.3f FTNS per access; accesses by %s to its own content are not "
               "counted (%lld)\n",
               json_real_value(json_object_get(reply, "royalty_rate")), field(reply, "creator_id"),
               (long long)json_integer_value(
                       json_object_get(json_object_get(reply, "own"), "accesses")));
        printf("%-72s %10s %14s %12s\n", "CREATOR", "ACCESSES", "BYTES", "FTNS OWED");
        list = json_object_get(reply, "creators");
        json_array_foreach(list, i, e)
        {
                printf("%-72s %10lld %14lld %12.3f\n", field(e, "creator"),
                       (long long)json_integer_value(json_object_get(e, "accesses")),
                       (long long)json_integer_value(json_object_get(e, "bytes")),
                       json_real_value(json_object_get(e, "ftns_owed")));
        }
        printf("%-72s %10s %14s %12.3f\n", "TOTAL", "", "",
               json_real_value(json_object_get(reply, "total_ftns_owed")));
        json_decref(reply);
        return 0;
}
