// Loop device attachment and mount(2) on the thread pool (host.c).
#ifndef VAULT_HOST_H
#define VAULT_HOST_H
#include <node_api.h>
#include <stdbool.h>

bool host_register(napi_env env, napi_value exports);

#endif
