// XTS-AES-256 over whole sectors with the OpenSSL that Node itself links (no library of our own).
// Each XtsContext keeps its 64-byte key in a locked, undumpable page of its own (secure.c) and one
// EVP_CIPHER_CTX. The AES key schedules, which OpenSSL allocates where we cannot lock them, exist only
// while a batch is being processed: keyed at the start of encrypt()/decrypt(), cleansed and freed by
// EVP_CIPHER_CTX_reset at its end. Per sector only the IV (the 128-bit little-endian sector index)
// changes; keying once per batch (32 sectors for a 128 KiB request) costs a few percent of it.
#define NAPI_VERSION 8
#include <node_api.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "host.h"
#include "kdf.h"
#include "secure.h"

#define XTS_KEY_BYTES 64
#define XTS_HALF_BYTES 32
#define XTS_BLOCK_BYTES 16
// OpenSSL refuses data units above 2^20 blocks (NIST SP 800-38E); 16 MiB is far above any sector.
#define XTS_MAX_SECTOR_BYTES (1u << 24)
// 2^53: the largest integer a JS number holds exactly together with all smaller ones.
#define MAX_EXACT_NUMBER 9007199254740992.0

// Marks our objects, so a method called on some other addon's wrapped object throws instead of
// reinterpreting that object's pointer.
static const napi_type_tag XTS_CONTEXT_TAG = {0x7661756c74787473ULL, 0x4f70656e53534c31ULL};

typedef struct {
  EVP_CIPHER_CTX *ctx;
  uint8_t *key; // XTS_KEY_BYTES in a locked page (secure_key_alloc), NULL once destroyed
  uint32_t sector_size;
} XtsContext;

static EVP_CIPHER *xts_cipher(void) {
  // Fetched once: an explicit fetch saves the implicit one at every keying.
  static EVP_CIPHER *cipher = NULL;
  if (cipher == NULL) cipher = EVP_CIPHER_fetch(NULL, "AES-256-XTS", NULL);
  return cipher;
}

// On any failure below we have thrown a JS exception and return NULL; N-API turns that into a throw.
#define CHECK_NAPI(env, call)                                   \
  do {                                                          \
    if ((call) != napi_ok) {                                    \
      throw_pending_or_generic(env, "N-API call failed: " #call); \
      return NULL;                                              \
    }                                                           \
  } while (0)

static void throw_pending_or_generic(napi_env env, const char *message) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, NULL, message);
}

static void free_contexts(XtsContext *xts) {
  // EVP_CIPHER_CTX_free cleanses whatever key schedule is left; the key page is wiped and unmapped.
  if (xts->ctx != NULL) EVP_CIPHER_CTX_free(xts->ctx);
  xts->ctx = NULL;
  if (xts->key != NULL) secure_key_free(xts->key, XTS_KEY_BYTES);
  xts->key = NULL;
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  XtsContext *xts = data;
  free_contexts(xts);
  OPENSSL_cleanse(xts, sizeof *xts);
  OPENSSL_free(xts);
}

// Reads a Uint8Array argument; anything else is a TypeError.
static bool get_bytes(napi_env env, napi_value value, const char *name, uint8_t **data, size_t *length) {
  bool is_typed = false;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) {
    char message[96];
    snprintf(message, sizeof message, "%s must be a Uint8Array", name);
    napi_throw_type_error(env, NULL, message);
    return false;
  }
  napi_typedarray_type type;
  void *pointer = NULL;
  if (napi_get_typedarray_info(env, value, &type, length, &pointer, NULL, NULL) != napi_ok) {
    throw_pending_or_generic(env, "cannot read typed array");
    return false;
  }
  if (type != napi_uint8_array) {
    char message[96];
    snprintf(message, sizeof message, "%s must be a Uint8Array", name);
    napi_throw_type_error(env, NULL, message);
    return false;
  }
  *data = pointer;
  return true;
}

// new XtsContext(key: Uint8Array(64), sectorSize: number)
static napi_value context_new(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_value self;
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  napi_value new_target = NULL;
  CHECK_NAPI(env, napi_get_new_target(env, info, &new_target));
  if (new_target == NULL) {
    napi_throw_type_error(env, NULL, "XtsContext must be called with new");
    return NULL;
  }
  if (argc < 2) {
    napi_throw_type_error(env, NULL, "XtsContext(key, sectorSize) needs two arguments");
    return NULL;
  }
  uint8_t *key = NULL;
  size_t key_length = 0;
  if (!get_bytes(env, argv[0], "key", &key, &key_length)) return NULL;
  if (key_length != XTS_KEY_BYTES) {
    napi_throw_range_error(env, NULL, "XTS-AES-256 key must be 64 bytes");
    return NULL;
  }
  if (CRYPTO_memcmp(key, key + XTS_HALF_BYTES, XTS_HALF_BYTES) == 0) {
    napi_throw_range_error(env, NULL, "XTS key halves must differ");
    return NULL;
  }
  napi_valuetype kind;
  CHECK_NAPI(env, napi_typeof(env, argv[1], &kind));
  if (kind != napi_number) {
    napi_throw_type_error(env, NULL, "sectorSize must be a number");
    return NULL;
  }
  double sector_size = 0;
  CHECK_NAPI(env, napi_get_value_double(env, argv[1], &sector_size));
  if (!(sector_size >= XTS_BLOCK_BYTES && sector_size <= XTS_MAX_SECTOR_BYTES) ||
      sector_size != (double)(uint32_t)sector_size || ((uint32_t)sector_size % XTS_BLOCK_BYTES) != 0) {
    napi_throw_range_error(env, NULL, "sectorSize must be a multiple of 16 between 16 and 16 MiB");
    return NULL;
  }

  XtsContext *xts = OPENSSL_zalloc(sizeof *xts);
  if (xts == NULL) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  xts->sector_size = (uint32_t)sector_size;
  xts->ctx = EVP_CIPHER_CTX_new();
  xts->key = secure_key_alloc(XTS_KEY_BYTES);
  if (xts->ctx == NULL || xts->key == NULL || xts_cipher() == NULL) {
    finalize(env, xts, NULL);
    ERR_clear_error(); // leave no stale entries for node:crypto to trip over
    napi_throw_error(env, NULL, "cannot set up OpenSSL XTS-AES-256");
    return NULL;
  }
  memcpy(xts->key, key, XTS_KEY_BYTES);
  if (napi_wrap(env, self, xts, finalize, NULL, NULL) != napi_ok) {
    finalize(env, xts, NULL);
    throw_pending_or_generic(env, "cannot wrap XtsContext");
    return NULL;
  }
  CHECK_NAPI(env, napi_type_tag_object(env, self, &XTS_CONTEXT_TAG));
  return self;
}

static XtsContext *unwrap_any(napi_env env, napi_value self) {
  bool tagged = false;
  void *data = NULL;
  if (napi_check_object_type_tag(env, self, &XTS_CONTEXT_TAG, &tagged) != napi_ok || !tagged ||
      napi_unwrap(env, self, &data) != napi_ok || data == NULL) {
    throw_pending_or_generic(env, "not an XtsContext");
    return NULL;
  }
  return data;
}

static XtsContext *unwrap(napi_env env, napi_value self) {
  XtsContext *xts = unwrap_any(env, self);
  if (xts == NULL) return NULL;
  if (xts->ctx == NULL) {
    napi_throw_error(env, NULL, "XTS cipher was destroyed");
    return NULL;
  }
  return xts;
}

// firstSector: a non-negative integer number <= 2^53, or a bigint < 2^64.
static bool get_first_sector(napi_env env, napi_value value, uint64_t *first) {
  napi_valuetype kind;
  if (napi_typeof(env, value, &kind) != napi_ok) {
    throw_pending_or_generic(env, "cannot read firstSector");
    return false;
  }
  if (kind == napi_number) {
    double number = 0;
    napi_get_value_double(env, value, &number);
    if (!(number >= 0 && number <= MAX_EXACT_NUMBER) || number != (double)(uint64_t)number) {
      napi_throw_range_error(env, NULL, "firstSector must be an integer between 0 and 2^53");
      return false;
    }
    *first = (uint64_t)number;
    return true;
  }
  if (kind == napi_bigint) {
    // Read the words ourselves: the sign and any bits above 64 must be rejected, not wrapped.
    int sign = 0;
    size_t words = 2;
    uint64_t digits[2] = {0, 0};
    if (napi_get_value_bigint_words(env, value, &sign, &words, digits) != napi_ok) {
      throw_pending_or_generic(env, "cannot read firstSector");
      return false;
    }
    if (words > 1 || sign != 0) {
      napi_throw_range_error(env, NULL, "firstSector must be a bigint between 0 and 2^64 - 1");
      return false;
    }
    *first = digits[0];
    return true;
  }
  napi_throw_type_error(env, NULL, "firstSector must be a number or a bigint");
  return false;
}

// ctx.encrypt(input, firstSector, out?) / ctx.decrypt(...): whole sectors, in place when out is input.
static napi_value crypt(napi_env env, napi_callback_info info, bool enc) {
  size_t argc = 3;
  napi_value argv[3];
  napi_value self;
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  XtsContext *xts = unwrap(env, self);
  if (xts == NULL) return NULL;
  if (argc < 2) {
    napi_throw_type_error(env, NULL, "expected (input, firstSector, out?)");
    return NULL;
  }
  uint8_t *input = NULL;
  size_t length = 0;
  if (!get_bytes(env, argv[0], "input", &input, &length)) return NULL;
  uint8_t *output = input;
  if (argc >= 3) {
    napi_valuetype kind;
    CHECK_NAPI(env, napi_typeof(env, argv[2], &kind));
    if (kind != napi_undefined) {
      size_t out_length = 0;
      if (!get_bytes(env, argv[2], "out", &output, &out_length)) return NULL;
      if (out_length != length) {
        napi_throw_range_error(env, NULL, "out must have the same length as input");
        return NULL;
      }
    }
  }
  const size_t sector_size = xts->sector_size;
  if (length == 0 || length % sector_size != 0) {
    napi_throw_range_error(env, NULL, "input length must be a positive multiple of the sector size");
    return NULL;
  }
  // Same memory is fine (XTS works in place); a shifted overlap would read already-written sectors.
  if (output != input && output < input + length && input < output + length) {
    napi_throw_range_error(env, NULL, "out must be input itself or not overlap it");
    return NULL;
  }
  uint64_t first = 0;
  if (!get_first_sector(env, argv[1], &first)) return NULL;
  const uint64_t count = length / sector_size;
  if (count - 1 > UINT64_MAX - first) {
    napi_throw_range_error(env, NULL, "firstSector + sector count exceeds 2^64");
    return NULL;
  }

  EVP_CIPHER_CTX *ctx = xts->ctx;
  bool ok = EVP_CipherInit_ex(ctx, xts_cipher(), NULL, xts->key, NULL, enc) == 1;
  uint8_t iv[XTS_BLOCK_BYTES] = {0};
  for (uint64_t j = 0; ok && j < count; j++) {
    const uint64_t sector = first + j;
    for (int b = 0; b < 8; b++) iv[b] = (uint8_t)(sector >> (8 * b)); // little-endian, high half 0
    const size_t offset = (size_t)j * sector_size;
    int written = 0;
    ok = EVP_CipherInit_ex(ctx, NULL, NULL, NULL, iv, enc) == 1 &&
         EVP_CipherUpdate(ctx, output + offset, &written, input + offset, (int)sector_size) == 1 &&
         (size_t)written == sector_size;
  }
  // Cleanses and frees the key schedules: outside a batch they exist only in the locked key page.
  EVP_CIPHER_CTX_reset(ctx);
  if (!ok) {
    ERR_clear_error();
    napi_throw_error(env, NULL, "OpenSSL XTS-AES-256 failed");
  }
  return NULL; // undefined
}

static napi_value context_encrypt(napi_env env, napi_callback_info info) { return crypt(env, info, true); }
static napi_value context_decrypt(napi_env env, napi_callback_info info) { return crypt(env, info, false); }

static napi_value context_destroy(napi_env env, napi_callback_info info) {
  napi_value self;
  CHECK_NAPI(env, napi_get_cb_info(env, info, NULL, NULL, &self, NULL));
  XtsContext *xts = unwrap_any(env, self);
  if (xts == NULL) return NULL;
  free_contexts(xts); // the struct itself goes with the finalizer; later calls see NULL contexts
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor methods[] = {
      {"encrypt", NULL, context_encrypt, NULL, NULL, NULL, napi_default, NULL},
      {"decrypt", NULL, context_decrypt, NULL, NULL, NULL, napi_default, NULL},
      {"destroy", NULL, context_destroy, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value constructor;
  if (napi_define_class(env, "XtsContext", NAPI_AUTO_LENGTH, context_new, NULL, 3, methods, &constructor) != napi_ok ||
      napi_set_named_property(env, exports, "XtsContext", constructor) != napi_ok ||
      !secure_register(env, exports) || !kdf_register(env, exports) || !host_register(env, exports)) {
    return NULL;
  }
  return exports;
}
