// The package's root directory (where package.json and bin/ are). This module sits two levels below
// it in src/cli and dist/cli, and so does the bundle it ends up in (dist/cli/main.js, scripts/bundle.mjs):
// one relative URL serves all three; deeper modules (commands/) take it from here.
export const PACKAGE_ROOT = new URL('../../', import.meta.url);
