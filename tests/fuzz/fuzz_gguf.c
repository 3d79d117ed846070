/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The model header parser (src/fs/formats.c) on GGUF files: the input is the file after its
 * magic, so that no run is spent finding "GGUF". */
#include <string.h>

#include "fuzz_formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        uint8_t *file = malloc(size + 4);

        if (!file)
                return 0;
        memcpy(file, "GGUF", 4);
        if (size)
                memcpy(file + 4, data, size);
        fuzz_formats_run(file, size + 4);
        free(file);
        return 0;
}
