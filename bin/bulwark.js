#!/usr/bin/env node
// The `bulwark` command. The TypeScript sources are compiled to dist/ by `npm ci` (the
// `prepare` script), so this shim only loads the compiled entry point.
import { main } from "../dist/src/cli/main.js";

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
  },
);
