{
  # Two native addons, built by `npm install` (node-gyp) against Node's own headers, which include the
  # OpenSSL headers matching the OpenSSL inside the node binary; OpenSSL is not linked, it is Node's.
  #   vault_xts   XTS over sectors for JavaScript (native/xts.c), PBKDF2 over OpenSSL's legacy digests
  #               (native/kdf.c: Whirlpool without --openssl-legacy-provider), loop attach and
  #               mount(2) on the thread pool (native/host.c)
  #   vault_fuse  the FUSE 3 bridge (native/fuse3.c): links Debian's libfuse3; built only when
  #               pkg-config finds fuse3 (apt-get install libfuse3-dev)
  "variables": {
    "has_fuse3%": "<!(pkg-config --exists fuse3 2>/dev/null && echo 1 || echo 0)"
  },
  "targets": [
    {
      "target_name": "vault_xts",
      "sources": ["native/xts.c", "native/secure.c", "native/kdf.c", "native/host.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden"],
      "defines": ["NAPI_DISABLE_CPP_EXCEPTIONS"]
    }
  ],
  "conditions": [
    ["has_fuse3==1", {
      "targets": [
        {
          "target_name": "vault_fuse",
          "sources": ["native/fuse3.c", "native/secure.c"],
          "cflags": ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden",
                     "<!@(pkg-config --cflags fuse3)"],
          "libraries": ["<!@(pkg-config --libs fuse3)"],
          "defines": ["NAPI_DISABLE_CPP_EXCEPTIONS"]
        }
      ]
    }]
  ]
}
