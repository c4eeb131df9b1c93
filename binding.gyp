{
  # The native XTS addon: built by `npm install` (node-gyp) against Node's own headers, which include
  # the OpenSSL headers matching the OpenSSL inside the node binary; no library is linked or downloaded.
  "targets": [
    {
      "target_name": "vault_xts",
      "sources": ["native/xts.c", "native/secure.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden"],
      "defines": ["NAPI_DISABLE_CPP_EXCEPTIONS"]
    }
  ]
}
