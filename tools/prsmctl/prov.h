/* SPDX-License-Identifier: GPL-2.0-or-later */
/* prsmctl's PRSM commands (prov.c): provenance, its export and verification, rewards. */
#pragma once

#include <stdbool.h>

#include <jansson.h>

struct prov_opts {
        bool json, gzip;
        const char *export_file; /* --export FILE */
        const char *verify_file; /* --verify FILE */
        const char *pubkey;      /* --pubkey KEY: "ed25519:<hex>" or a file holding it */
        const char *since;       /* --since TIME */
        bool publish;            /* --publish: the export added to IPFS, its CID printed */
};

/* From prsmctl.c: the daemon's reply to req (NULL on failure, reported), and the socket and
 * the path from the mount root of a path in the mount (its parent must exist). */
json_t *prsmctl_call(const char *sock, json_t *req);
int prsmctl_locate(const char *path, char *sock, size_t size, char *rel, size_t rel_size);

/* Exit statuses: 0 fine, 1 failure or a record that does not verify, 2 usage. */
int prov_provenance(const struct prov_opts *o, const char *path, char *sock, size_t size);
int prov_rewards(const struct prov_opts *o, const char *path, char *sock, size_t size);
