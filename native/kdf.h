// PBKDF2 over OpenSSL's legacy-provider digests (Whirlpool) through a private OSSL_LIB_CTX (kdf.c).
#ifndef VAULT_KDF_H
#define VAULT_KDF_H
#include <node_api.h>
#include <stdbool.h>

bool kdf_register(napi_env env, napi_value exports);

#endif
