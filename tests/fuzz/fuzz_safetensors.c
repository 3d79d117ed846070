/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The model header parser (src/fs/formats.c) on safetensors files: the input is the file. */
#include <string.h>

#include "fuzz_formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size >= 4 && memcmp(data, "GGUF", 4) == 0)
                return 0; /* fuzz_gguf's */
        fuzz_formats_run(data, size);
        return 0;
}
