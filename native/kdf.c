// PBKDF2 over the hashes OpenSSL keeps in its "legacy" provider (Whirlpool, which VeraCrypt and
// TrueCrypt use), for a Node.js started without --openssl-legacy-provider: a private OSSL_LIB_CTX loads
// the legacy and default providers, so the process-wide OpenSSL configuration is left as it is.
// pbkdf2Legacy(digest, password, salt, iterations, out) runs on the libuv thread pool and returns a
// Promise that settles once `out` holds the key; password and salt are copied into locked key memory.
#include <limits.h>
#include <node_api.h>
#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <stdlib.h>
#include <string.h>

#include "kdf.h"
#include "secure.h"

#define MAX_INPUT_BYTES 4096 // passwords (128 + keyfile pool) and salts (64) are far below this
#define MAX_OUTPUT_BYTES 1024
#define MAX_NAME_BYTES 32

static OSSL_LIB_CTX *legacy_context = NULL;

// Fetches `name` from the private context, loading the providers on first use (JavaScript thread only).
static EVP_MD *fetch_legacy_digest(const char *name) {
  if (legacy_context == NULL) {
    OSSL_LIB_CTX *context = OSSL_LIB_CTX_new();
    if (context == NULL) return NULL;
    if (OSSL_PROVIDER_load(context, "legacy") == NULL || OSSL_PROVIDER_load(context, "default") == NULL) {
      OSSL_LIB_CTX_free(context);
      return NULL;
    }
    legacy_context = context;
  }
  return EVP_MD_fetch(legacy_context, name, NULL);
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref out_ref;
  EVP_KDF *kdf; // PBKDF2 from the private context: PKCS5_PBKDF2_HMAC would look the digest up globally
  char digest_name[MAX_NAME_BYTES];
  unsigned char *password; // secure_key_alloc'd
  size_t password_length;
  unsigned char *salt;
  size_t salt_length;
  unsigned char *key; // secure_key_alloc'd
  size_t key_length;
  int iterations;
  int ok;
} Pbkdf2Job;

static void job_free(napi_env env, Pbkdf2Job *job) {
  if (job->password) secure_key_free(job->password, job->password_length ? job->password_length : 1);
  if (job->salt) secure_key_free(job->salt, job->salt_length ? job->salt_length : 1);
  if (job->key) secure_key_free(job->key, job->key_length);
  if (job->kdf) EVP_KDF_free(job->kdf);
  if (job->out_ref) napi_delete_reference(env, job->out_ref);
  if (job->work) napi_delete_async_work(env, job->work);
  OPENSSL_cleanse(job, sizeof *job);
  free(job);
}

static void pbkdf2_execute(napi_env env, void *data) {
  (void)env;
  Pbkdf2Job *job = data;
  EVP_KDF_CTX *context = EVP_KDF_CTX_new(job->kdf);
  if (context == NULL) return;
  unsigned int iterations = (unsigned int)job->iterations;
  int pkcs5 = 1; // no SP 800-132 minimums: the formats fix their own salt sizes and counts
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, job->password, job->password_length),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, job->salt, job->salt_length),
      OSSL_PARAM_construct_uint(OSSL_KDF_PARAM_ITER, &iterations),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, job->digest_name, 0),
      OSSL_PARAM_construct_int(OSSL_KDF_PARAM_PKCS5, &pkcs5),
      OSSL_PARAM_construct_end(),
  };
  job->ok = EVP_KDF_derive(context, job->key, job->key_length, params);
  EVP_KDF_CTX_free(context);
}

static void pbkdf2_complete(napi_env env, napi_status status, void *data) {
  Pbkdf2Job *job = data;
  napi_value result = NULL;
  bool resolved = false;
  if (status == napi_ok && job->ok == 1) {
    napi_value out;
    void *out_data = NULL;
    size_t out_length = 0;
    if (napi_get_reference_value(env, job->out_ref, &out) == napi_ok &&
        napi_get_buffer_info(env, out, &out_data, &out_length) == napi_ok && out_length == job->key_length) {
      memcpy(out_data, job->key, job->key_length);
      napi_get_undefined(env, &result);
      resolved = napi_resolve_deferred(env, job->deferred, result) == napi_ok;
    }
  }
  if (!resolved) {
    napi_value message, error;
    napi_create_string_utf8(env, "PBKDF2 with the legacy digest failed", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &error);
    napi_reject_deferred(env, job->deferred, error);
  }
  job_free(env, job);
}

// Copies a Buffer/Uint8Array argument into locked memory of at most MAX_INPUT_BYTES.
static bool copy_bytes(napi_env env, napi_value value, unsigned char **copy, size_t *length) {
  bool is_typed = false;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) return false;
  napi_typedarray_type type;
  size_t count = 0;
  void *data = NULL;
  if (napi_get_typedarray_info(env, value, &type, &count, &data, NULL, NULL) != napi_ok ||
      type != napi_uint8_array || count > MAX_INPUT_BYTES)
    return false;
  *copy = secure_key_alloc(count ? count : 1);
  if (*copy == NULL) return false;
  if (count) memcpy(*copy, data, count);
  *length = count;
  return true;
}

static napi_value pbkdf2_legacy(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 5) {
    napi_throw_type_error(env, NULL, "pbkdf2Legacy(digest, password, salt, iterations, out)");
    return NULL;
  }
  char name[MAX_NAME_BYTES];
  size_t name_length = 0;
  int64_t iterations = 0;
  bool is_buffer = false;
  void *out_data = NULL;
  size_t out_length = 0;
  if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &name_length) != napi_ok ||
      name_length == 0 || name_length >= sizeof name - 1 || napi_get_value_int64(env, argv[3], &iterations) != napi_ok ||
      iterations < 1 || iterations > INT_MAX || napi_is_buffer(env, argv[4], &is_buffer) != napi_ok ||
      !is_buffer || napi_get_buffer_info(env, argv[4], &out_data, &out_length) != napi_ok || out_length < 1 ||
      out_length > MAX_OUTPUT_BYTES) {
    napi_throw_range_error(env, NULL, "pbkdf2Legacy: bad digest name, iteration count or output buffer");
    return NULL;
  }
  Pbkdf2Job *job = calloc(1, sizeof *job);
  if (job == NULL) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  job->iterations = (int)iterations;
  job->key_length = out_length;
  if (!copy_bytes(env, argv[1], &job->password, &job->password_length) ||
      !copy_bytes(env, argv[2], &job->salt, &job->salt_length)) {
    job_free(env, job);
    napi_throw_range_error(env, NULL, "pbkdf2Legacy: password and salt must be Uint8Arrays up to 4096 bytes");
    return NULL;
  }
  EVP_MD *digest = fetch_legacy_digest(name);
  bool found = digest != NULL;
  EVP_MD_free(digest);
  memcpy(job->digest_name, name, name_length + 1);
  job->kdf = found ? EVP_KDF_fetch(legacy_context, OSSL_KDF_NAME_PBKDF2, NULL) : NULL;
  job->key = secure_key_alloc(out_length);
  if (job->kdf == NULL || job->key == NULL) {
    job_free(env, job);
    napi_throw_error(env, "ERR_DIGEST_UNAVAILABLE", "this digest is not in OpenSSL's legacy or default provider");
    return NULL;
  }
  napi_value promise, resource_name;
  if (napi_create_reference(env, argv[4], 1, &job->out_ref) != napi_ok ||
      napi_create_promise(env, &job->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "vault:pbkdf2Legacy", NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_create_async_work(env, NULL, resource_name, pbkdf2_execute, pbkdf2_complete, job, &job->work) !=
          napi_ok ||
      napi_queue_async_work(env, job->work) != napi_ok) {
    // A created deferred that is never settled only leaves a pending promise nobody received.
    job_free(env, job);
    napi_throw_error(env, NULL, "pbkdf2Legacy: cannot queue the work");
    return NULL;
  }
  return promise;
}

// Whether `name` can be fetched from the private legacy context (loads the providers once).
static napi_value legacy_digest_available(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  char name[MAX_NAME_BYTES];
  size_t name_length = 0;
  napi_value result;
  bool available = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc == 1 &&
      napi_get_value_string_utf8(env, argv[0], name, sizeof name, &name_length) == napi_ok && name_length > 0 &&
      name_length < sizeof name - 1) {
    EVP_MD *digest = fetch_legacy_digest(name);
    available = digest != NULL;
    EVP_MD_free(digest);
  }
  napi_get_boolean(env, available, &result);
  return result;
}

bool kdf_register(napi_env env, napi_value exports) {
  napi_property_descriptor functions[] = {
      {"pbkdf2Legacy", NULL, pbkdf2_legacy, NULL, NULL, NULL, napi_default, NULL},
      {"legacyDigestAvailable", NULL, legacy_digest_available, NULL, NULL, NULL, napi_default, NULL},
  };
  return napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions) == napi_ok;
}
