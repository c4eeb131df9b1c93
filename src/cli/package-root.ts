// The package's root directory (where package.json and bin/ are). This module sits two levels below
// it in src/cli, in dist/cli, and in dist/chunks once bundled (scripts/bundle.mjs), so one relative URL
// serves all three; deeper modules (commands/) take it from here.
export const PACKAGE_ROOT = new URL('../../', import.meta.url);
