/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The config as an admin (or a hostile fstab line) gives it: an input starting with '{' or
 * whitespace is a config file's JSON (config_load_json, the path config_load_file takes);
 * anything else is a list of "-o" overrides, one "key[=value]" per line (config_set_option).
 * Then the cross-field checks. Every refusal must say why in err (NUL-terminated, not empty),
 * and whatever was loaded must be freed by config_done (the leak checker watches).
 */
#include <stdlib.h>
#include <string.h>

#include "prsmfs/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_err(int r, const char *err, size_t err_size)
{
        if (r < 0 && (err[0] == '\0' || strnlen(err, err_size) == err_size))
                abort();
}

static void options(struct config *c, const uint8_t *data, size_t size)
{
        char err[512], *text = malloc(size + 1), *line, *save = NULL;

        if (!text)
                return;
        memcpy(text, data, size);
        text[size] = '\0';
        for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *eq = strchr(line, '=');
                int r;

                if (eq)
                        *eq = '\0';
                err[0] = '\0';
                r = config_set_option(c, line, eq ? eq + 1 : NULL, err, sizeof(err));
                check_err(r, err, sizeof(err));
        }
        free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct config c;
        char err[512] = "";
        int r;

        if (config_init_defaults(&c) < 0)
                return 0;
        if (size && (data[0] == '{' || data[0] == ' ' || data[0] == '\n' || data[0] == '\t')) {
                r = config_load_json(&c, (const char *)data, size, "fuzz", err, sizeof(err));
                check_err(r, err, sizeof(err));
        } else {
                options(&c, data, size);
        }
        err[0] = '\0';
        r = config_validate(&c, err, sizeof(err));
        check_err(r, err, sizeof(err));
        config_done(&c);
        return 0;
}
