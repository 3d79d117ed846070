/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Identity, canonical encoding, signatures, the record chain and the ledger's batches. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "prsmfs/index.h"
#include "prsmfs/prsm.h"

struct fixture {
        char dir[64];
        char key[96];
        char db[96];
        struct prsm_identity *id;
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        char err[256];

        assert_non_null(f);
        (void)snprintf(f->dir, sizeof(f->dir), "/tmp/prsmfs-prsm-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        (void)snprintf(f->key, sizeof(f->key), "%s/identity.key", f->dir);
        (void)snprintf(f->db, sizeof(f->db), "%s/index.sqlite", f->dir);
        assert_int_equal(prsm_identity_load(f->key, true, err, sizeof(err), &f->id), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        char cmd[160];

        prsm_identity_free(f->id);
        (void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        assert_int_equal(system(cmd), 0);
        free(f);
        return 0;
}

static void test_identity__made_at_first_start__0600_and_same_key_when_reloaded(void **state)
{
        struct fixture *f = *state;
        struct prsm_identity *again = NULL;
        const char *id = prsm_identity_key_id(f->id);
        struct stat st;
        char err[256];

        assert_int_equal(stat(f->key, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(strncmp(id, "ed25519:", 8), 0);
        assert_int_equal(strlen(id), 8 + 64);
        assert_int_equal(prsm_identity_load(f->key, false, err, sizeof(err), &again), 0);
        assert_string_equal(prsm_identity_key_id(again), id);
        prsm_identity_free(again);
}

static void test_identity__group_readable_or_missing__refused_with_reason(void **state)
{
        struct fixture *f = *state;
        struct prsm_identity *id = NULL;
        char err[256] = "", missing[128];

        assert_int_equal(chmod(f->key, 0640), 0);
        assert_int_equal(prsm_identity_load(f->key, true, err, sizeof(err), &id), -EINVAL);
        assert_null(id);
        assert_non_null(strstr(err, "mode 0640"));
        /* owned by another user (needs root to hand it over) */
        assert_int_equal(chmod(f->key, 0600), 0);
        if (geteuid() == 0) {
                assert_int_equal(chown(f->key, 65534, 65534), 0);
                assert_int_equal(prsm_identity_load(f->key, true, err, sizeof(err), &id), -EINVAL);
                assert_non_null(strstr(err, "is owned by uid 65534"));
        }
        (void)snprintf(missing, sizeof(missing), "%s/none.key", f->dir);
        assert_true(prsm_identity_load(missing, false, err, sizeof(err), &id) < 0);
        assert_non_null(strstr(err, "does not exist"));
}

static void test_sign__message_changed_or_other_key__rejected(void **state)
{
        struct fixture *f = *state;
        uint8_t sig[PRSM_SIG_LEN];
        const char *id = prsm_identity_key_id(f->id);
        char other[PRSM_KEY_ID_MAX];

        assert_int_equal(prsm_identity_sign(f->id, "hello", 5, sig), 0);
        assert_int_equal(prsm_verify(id, "hello", 5, sig), 0);
        assert_int_equal(prsm_verify(id, "hellO", 5, sig), -EKEYREJECTED);
        (void)snprintf(other, sizeof(other), "%s", id);
        other[10] = other[10] == '0' ? '1' : '0';
        assert_true(prsm_verify(other, "hello", 5, sig) < 0);
        assert_int_equal(prsm_verify("rsa:00", "hello", 5, sig), -EINVAL);
}

static void test_canonical__sorted_compact_without_sig(void **state)
{
        char *s = NULL;

        (void)state;
        assert_int_equal(prsm_canonical("{ \"b\": 1, \"a\": \"x/y\", \"sig\": \"zz\", "
                                        "\"c\": {\"z\": null, \"y\": [2, 1]} }",
                                        &s),
                         0);
        assert_string_equal(s, "{\"a\":\"x/y\",\"b\":1,\"c\":{\"y\":[2,1],\"z\":null}}");
        free(s);
        assert_int_equal(prsm_canonical("[1]", &s), -EBADMSG);
        assert_int_equal(prsm_canonical("{\"a\":1,\"a\":2}", &s), -EBADMSG);
}

static void test_record__signed__verifies_and_any_change_is_rejected(void **state)
{
        struct fixture *f = *state;
        char *rec = NULL, *canon = NULL, h1[PRSM_HASH_HEX], h2[PRSM_HASH_HEX];
        json_t *o;
        char *bad;

        assert_int_equal(prsm_record_sign(f->id, "{\"op\":\"create\",\"size\":5}", &rec), 0);
        assert_int_equal(prsm_record_verify(rec, NULL), 0);
        assert_int_equal(prsm_record_verify(rec, prsm_identity_key_id(f->id)), 0);
        assert_int_equal(prsm_record_verify(rec, "ed25519:00"), -EKEYREJECTED);
        /* the signed bytes are the canonical form, which names the key */
        assert_int_equal(prsm_canonical(rec, &canon), 0);
        assert_non_null(strstr(canon, "\"key\":\"ed25519:"));
        assert_null(strstr(canon, "\"sig\""));
        o = json_loads(rec, 0, NULL);
        json_object_set_new(o, "size", json_integer(6));
        bad = json_dumps(o, JSON_COMPACT);
        assert_int_equal(prsm_record_verify(bad, NULL), -EKEYREJECTED);
        /* the hash covers the signature: another record, another hash */
        assert_int_equal(prsm_record_hash(rec, h1), 0);
        assert_int_equal(prsm_record_hash(bad, h2), 0);
        assert_string_not_equal(h1, h2);
        assert_int_equal(strlen(h1), 64);
        json_object_del(o, "sig");
        free(bad);
        bad = json_dumps(o, JSON_COMPACT);
        assert_int_equal(prsm_record_verify(bad, NULL), -EKEYREJECTED);
        assert_int_equal(prsm_record_verify("not json", NULL), -EBADMSG);
        free(bad);
        json_decref(o);
        free(canon);
        free(rec);
}

struct seen {
        char *texts[16];
        uint64_t seqs[16];
        size_t n;
};

static int collect(uint64_t seq, const char *record, void *userdata)
{
        struct seen *s = userdata;

        assert_true(s->n < 16);
        s->seqs[s->n] = seq;
        s->texts[s->n++] = strdup(record);
        return 0;
}

static void seen_done(struct seen *s)
{
        for (size_t i = 0; i < s->n; i++)
                free(s->texts[i]);
        s->n = 0;
}

static struct prsm *start(struct fixture *f, struct index *idx)
{
        struct prsm *p = NULL;

        assert_int_equal(prsm_new(&(struct prsm_config){ .idx = idx,
                                                         .id = f->id,
                                                         .creator_id = "alice",
                                                         .provenance = true,
                                                         .ledger = true,
                                                         .flush_ms = 60000 },
                                  &p),
                         0);
        return p;
}

static void test_chain__records_link_by_parent_hash_across_restarts(void **state)
{
        struct fixture *f = *state;
        struct index *idx = NULL;
        struct prsm *p;
        struct seen s = { 0 };
        struct cid cid;
        const char *c = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";

        assert_int_equal(cid_parse(c, strlen(c), &cid), 0);
        assert_int_equal(index_open(f->db, &idx), 0);
        p = start(f, idx);
        prsm_note(p,
                  &(struct prsm_event){
                          .op = PRSM_OP_CREATE, .path = "/a", .cid = &cid, .size = 3, .fd = -1 });
        prsm_note(p, &(struct prsm_event){ .op = PRSM_OP_RENAME,
                                           .path = "/b",
                                           .old_path = "/a",
                                           .old_cid = &cid,
                                           .cid = &cid,
                                           .size = 3,
                                           .fd = -1 });
        assert_int_equal(prsm_flush(p), 0);
        prsm_free(p);
        p = start(f, idx); /* the chain goes on from the index */
        prsm_note(p, &(struct prsm_event){ .op = PRSM_OP_LINK,
                                           .path = "/c",
                                           .cid = &cid,
                                           .creator = "bob",
                                           .fd = -1 });
        prsm_free(p); /* writes what is queued */
        assert_int_equal(index_prov_list(idx, 0, 100, collect, &s), 3);
        for (size_t i = 0; i < s.n; i++) {
                json_t *o = json_loads(s.texts[i], 0, NULL);
                char h[PRSM_HASH_HEX];

                assert_int_equal(prsm_record_verify(s.texts[i], prsm_identity_key_id(f->id)), 0);
                assert_int_equal(s.seqs[i], i + 1);
                assert_int_equal(json_integer_value(json_object_get(o, "seq")), (json_int_t)i + 1);
                if (i == 0)
                        assert_true(json_is_null(json_object_get(o, "parent")));
                else {
                        assert_int_equal(prsm_record_hash(s.texts[i - 1], h), 0);
                        assert_string_equal(json_string_value(json_object_get(o, "parent")), h);
                }
                json_decref(o);
        }
        /* the rename keeps the creator the create gave; a link names its own */
        assert_non_null(strstr(s.texts[1], "\"creator\":\"alice\""));
        assert_non_null(strstr(s.texts[1], "\"old_path\":\"/a\""));
        assert_non_null(strstr(s.texts[2], "\"creator\":\"bob\""));
        assert_non_null(strstr(s.texts[2], "\"signer\":\"alice\""));
        seen_done(&s);
        index_free(idx);
}

static void test_ledger__flushed_once__counts_are_not_doubled(void **state)
{
        struct fixture *f = *state;
        struct index *idx = NULL;
        struct index_access *rows = NULL;
        struct prsm_counter *c;
        struct prsm *p;
        struct cid cid;
        size_t n = 0;
        const char *s = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";

        assert_int_equal(cid_parse(s, strlen(s), &cid), 0);
        assert_int_equal(index_open(f->db, &idx), 0);
        p = start(f, idx);
        c = prsm_counter_get(p, &cid);
        assert_non_null(c);
        assert_ptr_equal(prsm_counter_get(p, &cid), c);
        for (int i = 0; i < 3; i++)
                prsm_counter_open(c);
        prsm_counter_bytes(c, 100);
        assert_int_equal(prsm_flush(p), 0);
        assert_int_equal(prsm_flush(p), 0); /* nothing new: nothing added */
        prsm_counter_open(c);
        prsm_free(p); /* the last open is flushed at stop */
        assert_int_equal(index_ledger_sum(idx, 0, &rows, &n), 0);
        assert_int_equal(n, 1);
        assert_true(cid_equal(&rows[0].cid, &cid));
        assert_int_equal(rows[0].opens, 4);
        assert_int_equal(rows[0].bytes, 100);
        free(rows);
        /* a batch written twice (a retried flush) counts once */
        struct index_access a = { .cid = cid, .opens = 5, .bytes = 1 };
        assert_int_equal(index_ledger_add(idx, 42, 1000, &a, 1), 0);
        assert_int_equal(index_ledger_add(idx, 42, 1000, &a, 1), 0);
        assert_int_equal(index_ledger_sum(idx, 0, &rows, &n), 0);
        assert_int_equal(rows[0].opens, 9);
        free(rows);
        index_free(idx);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(
                        test_identity__made_at_first_start__0600_and_same_key_when_reloaded, setup,
                        teardown),
                cmocka_unit_test_setup_teardown(
                        test_identity__group_readable_or_missing__refused_with_reason, setup,
                        teardown),
                cmocka_unit_test_setup_teardown(test_sign__message_changed_or_other_key__rejected,
                                                setup, teardown),
                cmocka_unit_test(test_canonical__sorted_compact_without_sig),
                cmocka_unit_test_setup_teardown(
                        test_record__signed__verifies_and_any_change_is_rejected, setup, teardown),
                cmocka_unit_test_setup_teardown(
                        test_chain__records_link_by_parent_hash_across_restarts, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ledger__flushed_once__counts_are_not_doubled,
                                                setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
