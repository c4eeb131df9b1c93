// What keeps keys inside the process that holds them: no core dumps and no ptrace/proc access by
// same-user processes (PR_SET_DUMPABLE 0), key buffers in pages that are locked in RAM (never swapped),
// left out of core dumps (MADV_DONTDUMP) and not inherited by children (MADV_WIPEONFORK), and wiped
// before they are unmapped. Also posix_fallocate on a descriptor, which Node's fs lacks.
#define NAPI_VERSION 8
#define _GNU_SOURCE
#include "secure.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif

// A locked region never grows past this: keys are tens of bytes; the bound only stops a caller's bug.
#define MAX_LOCKED_BYTES (1u << 20)

static bool locked_pages_total_ok = true;

static void throw_errno(napi_env env, const char *what, int error) {
  char message[160];
  snprintf(message, sizeof message, "%s: %s", what, strerror(error));
  napi_throw_error(env, NULL, message);
}

// harden(): no core dumps, no same-user ptrace or /proc/<pid>/mem; returns { dumpable, coreLimit }.
static napi_value harden(napi_env env, napi_callback_info info) {
  (void)info;
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    throw_errno(env, "prctl(PR_SET_DUMPABLE, 0)", errno);
    return NULL;
  }
  struct rlimit none = {0, 0};
  if (setrlimit(RLIMIT_CORE, &none) != 0) {
    throw_errno(env, "setrlimit(RLIMIT_CORE, 0)", errno);
    return NULL;
  }
  napi_value result, dumpable, core;
  if (napi_create_object(env, &result) != napi_ok ||
      napi_get_boolean(env, prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0, &dumpable) != napi_ok ||
      napi_create_int32(env, 0, &core) != napi_ok ||
      napi_set_named_property(env, result, "dumpable", dumpable) != napi_ok ||
      napi_set_named_property(env, result, "coreLimit", core) != napi_ok) {
    return NULL;
  }
  return result;
}

static size_t page_rounded(size_t length) {
  long page = sysconf(_SC_PAGESIZE);
  if (page <= 0) page = 4096;
  return (length + (size_t)page - 1) / (size_t)page * (size_t)page;
}

void *secure_key_alloc(size_t length) {
  if (length == 0 || length > MAX_LOCKED_BYTES) return NULL;
  size_t mapped = page_rounded(length);
  void *base = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) return NULL;
  // Both are advice the kernel may not know (old kernels): key memory still works without them.
  madvise(base, mapped, MADV_DONTDUMP);
  madvise(base, mapped, MADV_WIPEONFORK);
  if (mlock(base, mapped) != 0) locked_pages_total_ok = false;
  return base;
}

void secure_key_free(void *key, size_t length) {
  if (key == NULL) return;
  size_t mapped = page_rounded(length);
  OPENSSL_cleanse(key, mapped);
  munlock(key, mapped);
  munmap(key, mapped);
}

static void release_region(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  secure_key_free(data, (size_t)(uintptr_t)hint);
}

// lockedBuffer(length): a zeroed ArrayBuffer in pages the addon owns (secure_key_alloc), wiped and
// unmapped when the buffer is collected. Whether mlock succeeded (an unprivileged user's
// RLIMIT_MEMLOCK can refuse it) is reported by lockedPagesOk().
static napi_value locked_buffer(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  int64_t length = -1;
  if (argc < 1 || napi_get_value_int64(env, argv[0], &length) != napi_ok || length <= 0 ||
      length > MAX_LOCKED_BYTES) {
    napi_throw_range_error(env, NULL, "lockedBuffer(length): length must be 1 to 1048576 bytes");
    return NULL;
  }
  void *base = secure_key_alloc((size_t)length);
  if (base == NULL) {
    throw_errno(env, "mmap of key memory", errno);
    return NULL;
  }
  napi_value buffer;
  if (napi_create_external_arraybuffer(env, base, (size_t)length, release_region,
                                       (void *)(uintptr_t)length, &buffer) != napi_ok) {
    secure_key_free(base, (size_t)length);
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) napi_throw_error(env, NULL, "cannot create an external ArrayBuffer for key memory");
    return NULL;
  }
  return buffer;
}

// lockedPagesOk(): false once an mlock of key memory was refused (then keys may reach swap).
static napi_value locked_pages_ok(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  napi_get_boolean(env, locked_pages_total_ok, &result);
  return result;
}

// fallocate(fd, length): reserves [0, length) of an open file (posix_fallocate); returns 0 or the
// errno (EOPNOTSUPP on filesystems without it, ENOSPC when the disk is full). Never by path.
static napi_value allocate_file(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  int32_t fd = -1;
  int64_t length = -1;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_int64(env, argv[1], &length) != napi_ok || fd < 0 || length <= 0) {
    napi_throw_range_error(env, NULL, "fallocate(fd, length): a descriptor and a positive length");
    return NULL;
  }
  int error = posix_fallocate(fd, 0, (off_t)length);
  napi_value result;
  napi_create_int32(env, error, &result);
  return result;
}

bool secure_register(napi_env env, napi_value exports) {
  napi_property_descriptor functions[] = {
      {"harden", NULL, harden, NULL, NULL, NULL, napi_default, NULL},
      {"lockedBuffer", NULL, locked_buffer, NULL, NULL, NULL, napi_default, NULL},
      {"lockedPagesOk", NULL, locked_pages_ok, NULL, NULL, NULL, napi_default, NULL},
      {"fallocate", NULL, allocate_file, NULL, NULL, NULL, napi_default, NULL},
  };
  return napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions) == napi_ok;
}
