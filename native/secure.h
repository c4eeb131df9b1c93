// Process hardening and key memory for the addon (secure.c); registered on the addon's exports.
#ifndef VAULT_SECURE_H
#define VAULT_SECURE_H
#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>

bool secure_register(napi_env env, napi_value exports);

// Key memory for C code: zeroed, page-aligned, mlock'ed (best effort), MADV_DONTDUMP and
// MADV_WIPEONFORK. secure_key_free wipes it before unmapping. NULL when mmap fails.
void *secure_key_alloc(size_t length);
void secure_key_free(void *key, size_t length);

#endif
