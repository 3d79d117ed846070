/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The instance's Ed25519 identity (OpenSSL EVP). The private key lives in a PEM file (PKCS#8)
 * that only its owner may read: a key others could read is no proof of who signed, so such a
 * file is refused rather than used or "fixed". A new key is written to a temporary file
 * (0600, O_EXCL) and renamed into place, so a crash never leaves half a key behind.
 */
#define LOG_MODULE "prsm"
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "prsmfs/log.h"
#include "prsmfs/parse.h"
#include "prsmfs/prsm.h"

#include "prsm_internal.h"

#define KEY_FILE_MAX   (16 * 1024)
#define ED25519_PUBLEN 32

struct prsm_identity {
        EVP_PKEY *key;
        char key_id[PRSM_KEY_ID_MAX];
};

static int make_key_id(EVP_PKEY *key, char out[PRSM_KEY_ID_MAX])
{
        uint8_t pub[ED25519_PUBLEN];
        size_t len = sizeof(pub);

        if (EVP_PKEY_get_raw_public_key(key, pub, &len) != 1 || len != sizeof(pub))
                return -EINVAL;
        memcpy(out, "ed25519:", 8);
        prsm_hex(pub, len, out + 8);
        return 0;
}

/* Writes a new key to path (0600), atomically. */
static int create_key(const char *path, EVP_PKEY **ret, char *err, size_t err_size)
{
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
        EVP_PKEY *key = NULL;
        BIO *mem = NULL;
        char tmp[4096];
        char *pem = NULL;
        long pem_len;
        int fd = -1, r = -ENOMEM;

        if (!ctx || EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &key) != 1) {
                r = parse_fail(err, err_size, "cannot make an Ed25519 key (OpenSSL)");
                goto out;
        }
        mem = BIO_new(BIO_s_mem());
        if (!mem || PEM_write_bio_PrivateKey(mem, key, NULL, NULL, 0, NULL, NULL) != 1)
                goto out;
        pem_len = BIO_get_mem_data(mem, &pem);
        if (pem_len <= 0)
                goto out;
        if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= sizeof(tmp)) {
                r = parse_fail(err, err_size, "identity key path %s is too long", path);
                goto out;
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
                r = -errno;
                (void)parse_fail(err, err_size, "cannot create the identity key %s: %s", tmp,
                                 strerror(-r));
                goto out;
        }
        if (write(fd, pem, (size_t)pem_len) != (ssize_t)pem_len || fsync(fd) < 0 ||
            rename(tmp, path) < 0) {
                r = errno ? -errno : -EIO;
                (void)parse_fail(err, err_size, "cannot write the identity key %s: %s", path,
                                 strerror(-r));
                (void)unlink(tmp);
                goto out;
        }
        log_notice("made a new Ed25519 identity key in %s", path);
        *ret = key;
        key = NULL;
        r = 0;
out:
        if (fd >= 0)
                close(fd);
        BIO_free(mem);
        EVP_PKEY_free(key);
        EVP_PKEY_CTX_free(ctx);
        return r;
}

/* Reads the key at path, after checking who may read it. -ENOENT when there is none. */
static int read_key(const char *path, EVP_PKEY **ret, char *err, size_t err_size)
{
        char *buf = NULL;
        struct stat st;
        EVP_PKEY *key = NULL;
        BIO *mem = NULL;
        ssize_t n;
        int fd, r;

        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                if (r != -ENOENT)
                        (void)parse_fail(err, err_size, "cannot open the identity key %s: %s", path,
                                         strerror(-r));
                return r;
        }
        if (fstat(fd, &st) < 0) {
                r = parse_fail(err, err_size, "cannot stat the identity key %s: %m", path);
                goto out;
        }
        if (!S_ISREG(st.st_mode)) {
                r = parse_fail(err, err_size, "identity key %s is not a regular file", path);
                goto out;
        }
        if (st.st_uid != geteuid()) {
                r = parse_fail(err, err_size,
                               "identity key %s is owned by uid %u, not by this prsmfs (uid %u): "
                               "refusing a key another user controls",
                               path, (unsigned)st.st_uid, (unsigned)geteuid());
                goto out;
        }
        if (st.st_mode & 077) {
                r = parse_fail(err, err_size,
                               "identity key %s has mode %04o: group or others may access it, "
                               "refusing it (chmod 600 it if it was never exposed)",
                               path, (unsigned)(st.st_mode & 07777));
                goto out;
        }
        if (st.st_size <= 0 || st.st_size > KEY_FILE_MAX) {
                r = parse_fail(err, err_size, "identity key %s: %lld bytes is not a key file", path,
                               (long long)st.st_size);
                goto out;
        }
        buf = malloc((size_t)st.st_size);
        r = -ENOMEM;
        if (!buf)
                goto out;
        n = pread(fd, buf, (size_t)st.st_size, 0);
        mem = n == st.st_size ? BIO_new_mem_buf(buf, (int)n) : NULL;
        key = mem ? PEM_read_bio_PrivateKey(mem, NULL, NULL, NULL) : NULL;
        if (!key || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
                r = parse_fail(err, err_size, "identity key %s is not a PEM Ed25519 private key",
                               path);
                goto out;
        }
        *ret = key;
        key = NULL;
        r = 0;
out:
        close(fd);
        BIO_free(mem);
        if (buf)
                explicit_bzero(buf, (size_t)st.st_size);
        free(buf);
        EVP_PKEY_free(key);
        return r;
}

int prsm_identity_load(const char *path, bool create, char *err, size_t err_size,
                       struct prsm_identity **ret)
{
        struct prsm_identity *id;
        EVP_PKEY *key = NULL;
        int r;

        r = read_key(path, &key, err, err_size);
        if (r == -ENOENT && create)
                r = create_key(path, &key, err, err_size);
        else if (r == -ENOENT)
                (void)parse_fail(err, err_size, "identity key %s does not exist", path);
        if (r < 0)
                return r;
        id = calloc(1, sizeof(*id));
        if (!id) {
                EVP_PKEY_free(key);
                return -ENOMEM;
        }
        id->key = key;
        r = make_key_id(key, id->key_id);
        if (r < 0) {
                prsm_identity_free(id);
                return parse_fail(err, err_size, "identity key %s: no public key", path);
        }
        *ret = id;
        return 0;
}

void prsm_identity_free(struct prsm_identity *id)
{
        if (!id)
                return;
        EVP_PKEY_free(id->key);
        free(id);
}

const char *prsm_identity_key_id(const struct prsm_identity *id)
{
        return id->key_id;
}

int prsm_identity_sign(const struct prsm_identity *id, const void *msg, size_t len,
                       uint8_t ret_sig[PRSM_SIG_LEN])
{
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        size_t sig_len = PRSM_SIG_LEN;
        int r = -EIO;

        if (!ctx)
                return -ENOMEM;
        /* Ed25519 is "pure": no digest, the whole message at once */
        if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, id->key) == 1 &&
            EVP_DigestSign(ctx, ret_sig, &sig_len, msg, len) == 1 && sig_len == PRSM_SIG_LEN)
                r = 0;
        EVP_MD_CTX_free(ctx);
        return r;
}

int prsm_verify(const char *key_id, const void *msg, size_t len, const uint8_t sig[PRSM_SIG_LEN])
{
        uint8_t pub[ED25519_PUBLEN];
        EVP_MD_CTX *ctx = NULL;
        EVP_PKEY *key = NULL;
        int r = -EKEYREJECTED;

        if (!key_id || strncmp(key_id, "ed25519:", 8) != 0 ||
            prsm_unhex(key_id + 8, pub, ED25519_PUBLEN) < 0)
                return -EINVAL;
        key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, sizeof(pub));
        if (!key)
                return -EINVAL;
        ctx = EVP_MD_CTX_new();
        if (!ctx)
                r = -ENOMEM;
        else if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1 &&
                 EVP_DigestVerify(ctx, sig, PRSM_SIG_LEN, msg, len) == 1)
                r = 0;
        EVP_MD_CTX_free(ctx);
        EVP_PKEY_free(key);
        return r;
}
