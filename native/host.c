// The two system calls a mount spends most of its time waiting for, without running a program each:
// attaching a loop device (LOOP_CTL_GET_FREE + LOOP_CONFIGURE, what `losetup --find --show` does) and
// mount(2) of a kernel filesystem (what mount(8) does for a device, a type and an option list it has
// already split into flags and data). Both run on the libuv thread pool: the kernel reads the volume
// through our own FUSE bridge meanwhile (superblock, partition table), and a bridge that forwards its
// requests to JavaScript must not find the JavaScript thread blocked. Each returns a Promise of a
// number: attachLoop the loop device's index, mountFilesystem 0; a negative errno on failure. The
// callers (src/host/loop.ts, src/host/mounts.ts) fall back to losetup and mount(8) on any failure.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <unistd.h>

#include "host.h"

#define MAX_PATH 4096
#define MAX_TYPE 64
/** mount(2) takes at most one page of data. */
#define MAX_DATA 4096
/** Another process may take the free device between our two calls (EBUSY): look again this often. */
#define LOOP_ATTEMPTS 16

enum { ATTACH_READ_ONLY = 1, ATTACH_DIRECT_IO = 2, ATTACH_PARTSCAN = 4 };

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  bool is_mount;
  char path[MAX_PATH];   // attach: the backing file; mount: the source device
  char target[MAX_PATH]; // mount only
  char type[MAX_TYPE];
  char data[MAX_DATA];
  unsigned long flags;
  int result; // >= 0: done (loop index or 0), < 0: -errno
} HostJob;

static int open_backing(const char *path, bool read_only, bool direct_io) {
  int mode = read_only ? O_RDONLY : O_RDWR;
  // As losetup --direct-io=on: the backing file is opened O_DIRECT, and without it when it refuses.
  if (direct_io) {
    int fd = open(path, mode | O_CLOEXEC | O_DIRECT);
    if (fd >= 0 || errno != EINVAL) return fd;
  }
  return open(path, mode | O_CLOEXEC);
}

static int attach_loop(const char *path, int options) {
  bool read_only = options & ATTACH_READ_ONLY;
  int backing = open_backing(path, read_only, options & ATTACH_DIRECT_IO);
  if (backing < 0) return -errno;
  int control = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (control < 0) {
    int error = errno;
    close(backing);
    return -error;
  }
  struct loop_config config;
  memset(&config, 0, sizeof config);
  config.fd = (uint32_t)backing;
  if (read_only) config.info.lo_flags |= LO_FLAGS_READ_ONLY;
  if (options & ATTACH_DIRECT_IO) config.info.lo_flags |= LO_FLAGS_DIRECT_IO;
  if (options & ATTACH_PARTSCAN) config.info.lo_flags |= LO_FLAGS_PARTSCAN;
  snprintf((char *)config.info.lo_file_name, sizeof config.info.lo_file_name, "%s", path);
  int result = -EBUSY;
  for (int attempt = 0; attempt < LOOP_ATTEMPTS && result == -EBUSY; attempt++) {
    int index = ioctl(control, LOOP_CTL_GET_FREE);
    if (index < 0) {
      result = -errno;
      break;
    }
    char device[32];
    snprintf(device, sizeof device, "/dev/loop%d", index);
    int loop = open(device, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (loop < 0) {
      result = -errno;
      break;
    }
    // Attached until detached (no autoclear), as losetup leaves it: closing our descriptor keeps it.
    result = ioctl(loop, LOOP_CONFIGURE, &config) == 0 ? index : -errno;
    close(loop);
  }
  close(control);
  close(backing);
  return result;
}

static void job_execute(napi_env env, void *data) {
  (void)env;
  HostJob *job = data;
  if (job->is_mount) {
    job->result = mount(job->path, job->target, job->type, job->flags, job->data[0] ? job->data : NULL) == 0 ? 0 : -errno;
  } else {
    job->result = attach_loop(job->path, (int)job->flags);
  }
}

static void job_complete(napi_env env, napi_status status, void *data) {
  HostJob *job = data;
  napi_value result;
  if (status == napi_ok && napi_create_int32(env, job->result, &result) == napi_ok) {
    napi_resolve_deferred(env, job->deferred, result);
  } else {
    napi_value message, error;
    napi_create_string_utf8(env, "the system call job did not run", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &error);
    napi_reject_deferred(env, job->deferred, error);
  }
  napi_delete_async_work(env, job->work);
  free(job);
}

static bool get_string(napi_env env, napi_value value, char *out, size_t size) {
  size_t length = 0;
  return napi_get_value_string_utf8(env, value, out, size, &length) == napi_ok && length > 0 && length < size - 1 &&
         strlen(out) == length; // no NUL inside
}

static napi_value queue(napi_env env, HostJob *job) {
  napi_value promise, name;
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "vault:host", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, job_execute, job_complete, job, &job->work) != napi_ok ||
      napi_queue_async_work(env, job->work) != napi_ok) {
    free(job);
    napi_throw_error(env, NULL, "cannot queue the system call");
    return NULL;
  }
  return promise;
}

// attachLoop(backingFile, options: 1 read-only | 2 direct I/O | 4 partition scan): Promise<index | -errno>
static napi_value attach_loop_call(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  HostJob *job = calloc(1, sizeof *job);
  int32_t options = 0;
  if (job == NULL) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2 ||
      !get_string(env, argv[0], job->path, sizeof job->path) ||
      napi_get_value_int32(env, argv[1], &options) != napi_ok || options < 0 || options > 7) {
    free(job);
    napi_throw_type_error(env, NULL, "attachLoop(file, options)");
    return NULL;
  }
  job->flags = (unsigned long)options;
  return queue(env, job);
}

// mountFilesystem(source, target, type, flags, data): Promise<0 | -errno>
static napi_value mount_call(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  HostJob *job = calloc(1, sizeof *job);
  int64_t flags = 0;
  size_t data_length = 0;
  if (job == NULL) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  job->is_mount = true;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 5 ||
      !get_string(env, argv[0], job->path, sizeof job->path) ||
      !get_string(env, argv[1], job->target, sizeof job->target) ||
      !get_string(env, argv[2], job->type, sizeof job->type) || napi_get_value_int64(env, argv[3], &flags) != napi_ok ||
      flags < 0 || flags > UINT32_MAX ||
      napi_get_value_string_utf8(env, argv[4], job->data, sizeof job->data, &data_length) != napi_ok ||
      data_length >= sizeof job->data - 1 || strlen(job->data) != data_length) {
    free(job);
    napi_throw_type_error(env, NULL, "mountFilesystem(source, target, type, flags, data)");
    return NULL;
  }
  job->flags = (unsigned long)flags;
  return queue(env, job);
}

bool host_register(napi_env env, napi_value exports) {
  napi_value attach, mount_fn;
  return napi_create_function(env, "attachLoop", NAPI_AUTO_LENGTH, attach_loop_call, NULL, &attach) == napi_ok &&
         napi_set_named_property(env, exports, "attachLoop", attach) == napi_ok &&
         napi_create_function(env, "mountFilesystem", NAPI_AUTO_LENGTH, mount_call, NULL, &mount_fn) == napi_ok &&
         napi_set_named_property(env, exports, "mountFilesystem", mount_fn) == napi_ok;
}
