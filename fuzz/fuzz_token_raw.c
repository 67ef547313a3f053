/*
 * fuzz_token_raw.c - tokens as a client sends them (the auth frame's token,
 * ?token= in the URL): any bytes, verified by auth_verify(). Almost every
 * input fails the signature; what this reaches is the splitting, the
 * base64url decoding and the header parser, which run before it.
 */
#include "auth_common.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_token_one((const char *)data, size);
}
