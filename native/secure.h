// Process hardening and key memory for the addon (secure.c); registered on the addon's exports.
#ifndef VAULT_SECURE_H
#define VAULT_SECURE_H
#include <node_api.h>
#include <stdbool.h>

bool secure_register(napi_env env, napi_value exports);

#endif
