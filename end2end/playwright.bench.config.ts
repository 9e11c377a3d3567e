import { defineConfig } from "@playwright/test";

import base from "./playwright.config";

// scripts/bench-ui.sh builds the release site and passes the port, data folder and secret.
const port = Number(process.env.E2E_PORT ?? "3200");
const baseURL = `http://127.0.0.1:${port}`;

/** The documents-table benchmark: a release server, one browser, nothing else running. */
export default defineConfig({
  ...base,
  testDir: "./bench",
  testMatch: "**/*.bench.ts",
  timeout: 15 * 60_000,
  use: { ...base.use, baseURL, trace: "off", screenshot: "off" },
  webServer: {
    command: process.env.E2E_SERVER_BIN ?? "target/release/docpulse",
    cwd: "..",
    url: `${baseURL}/healthz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: "pipe",
    stderr: "pipe",
    env: {
      LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
      LEPTOS_SITE_ROOT: process.env.E2E_SITE_ROOT ?? "target/site",
      DATA_DIR: process.env.E2E_DATA_DIR ?? "target/bench-data",
      JWT_SECRET: process.env.JWT_SECRET ?? "",
      DEMO_USER: "false",
      // One worker that pauses an hour after its first chunk: the workers stay out of the
      // measurement, so every document event the page receives is one the benchmark published.
      WORKERS: "1",
      EMBED_DELAY_MS: "3600000",
      RUST_LOG: "warn",
    },
  },
});
