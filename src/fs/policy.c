/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * allowed_mime_types (docs/config.md): what a written file is, told from its first bytes, and
 * whether the config lets it be uploaded. The sniffer is ours, not libmagic: it knows the
 * model formats prsmfs serves (safetensors, GGUF, PyTorch's zip, pickle, NumPy, HDF5), which
 * libmagic's database does not, reads at most FS_SNIFF_LEN bytes of a file we wrote
 * ourselves, and needs no database, no per-thread handle and no new dependency. Types it does
 * not know are application/octet-stream (text/plain when the head is UTF-8 without NULs).
 */
#define LOG_MODULE "fs"
#include <inttypes.h>
#include <string.h>

#include "prsmfs/io.h"
#include "prsmfs/log.h"

#include "fs_internal.h"

static bool has(const uint8_t *p, size_t n, size_t off, const char *magic, size_t len)
{
        return n >= off + len && memcmp(p + off, magic, len) == 0;
}

/* UTF-8 without NULs or other C0 controls but tab, CR, LF, FF (a cut last character is fine). */
static bool is_text(const uint8_t *p, size_t n)
{
        for (size_t i = 0; i < n;) {
                uint8_t c = p[i];
                size_t len = c < 0x80             ? 1
                             : (c & 0xe0) == 0xc0 ? 2
                             : (c & 0xf0) == 0xe0 ? 3
                             : (c & 0xf8) == 0xf0 ? 4
                                                  : 0;

                /* (strchr finds a NUL too: it is tested apart) */
                if (len == 0 || c == 0 || (c < 0x20 && !strchr("\t\n\r\f", c)) || c == 0x7f)
                        return false;
                for (size_t k = 1; k < len; k++)
                        if (i + k < n && (p[i + k] & 0xc0) != 0x80)
                                return false;
                i += len;
        }
        return true;
}

const char *fs_sniff_mime(const uint8_t *p, size_t n, uint64_t size)
{
        size_t i = 0;

        if (n >= 9) {
                uint64_t hl = 0;

                for (int k = 7; k >= 0; k--)
                        hl = hl << 8 | p[k];
                if (hl >= 2 && hl <= size - 8 && p[8] == '{')
                        return "application/x-safetensors";
        }
        if (has(p, n, 0, "GGUF", 4))
                return "application/x-gguf";
        if (has(p, n, 0, "PK\x03\x04", 4) || has(p, n, 0, "PK\x05\x06", 4))
                return "application/zip"; /* PyTorch .pt/.pth, .npz, .keras */
        if (has(p, n, 0, "\x1f\x8b", 2))
                return "application/gzip";
        if (n >= 2 && p[0] == 0x80 && p[1] >= 2 && p[1] <= 5)
                return "application/x-python-pickle";
        if (has(p, n, 0, "\x93NUMPY", 6))
                return "application/x-npy";
        if (has(p, n, 0, "\x89HDF\r\n\x1a\n", 8))
                return "application/x-hdf5";
        if (has(p, n, 0, "%PDF-", 5))
                return "application/pdf";
        if (has(p, n, 0, "\x89PNG\r\n\x1a\n", 8))
                return "image/png";
        if (has(p, n, 0, "\xff\xd8\xff", 3))
                return "image/jpeg";
        if (has(p, n, 0, "GIF8", 4))
                return "image/gif";
        if (has(p, n, 257, "ustar", 5))
                return "application/x-tar";
        if (has(p, n, 0,
                "\x7f"
                "ELF",
                4))
                return "application/x-executable";
        if (!is_text(p, n))
                return "application/octet-stream";
        while (i < n && p[i] && strchr(" \t\r\n", p[i]))
                i++;
        if (i < n && (p[i] == '{' || p[i] == '['))
                return "application/json";
        return "text/plain";
}

bool fs_mime_allowed(const char *list, const char *mime)
{
        const char *slash = strchr(mime, '/');
        size_t tlen = slash ? (size_t)(slash - mime) : strlen(mime);

        for (const char *s = list; s && *s;) {
                size_t len = strcspn(s, ",");

                if ((len == 1 && s[0] == '*') || (len == 3 && memcmp(s, "*/*", 3) == 0) ||
                    (len == strlen(mime) && memcmp(s, mime, len) == 0) ||
                    (len == tlen + 2 && memcmp(s, mime, tlen) == 0 && s[tlen] == '/' &&
                     s[tlen + 1] == '*'))
                        return true;
                s += len + (s[len] == ',');
        }
        return false;
}

int fs_policy_check(struct fs *fs, int fd, uint64_t size, uint64_t ino)
{
        uint8_t head[FS_SNIFF_LEN];
        size_t n = (size_t)MIN(size, sizeof(head));
        const char *mime;
        int r;

        if (!fs->cfg->allowed_mime_types || size == 0)
                return 0; /* off, or nothing to tell a type from */
        r = io_pread_exact(fd, head, n, 0);
        if (r < 0)
                return r;
        mime = fs_sniff_mime(head, n, size);
        if (fs_mime_allowed(fs->cfg->allowed_mime_types, mime))
                return 0;
        log_warning("inode %" PRIu64 ": content is %s, which allowed_mime_types does not allow: "
                    "not uploaded (EPERM)",
                    ino, mime);
        return -EPERM;
}
