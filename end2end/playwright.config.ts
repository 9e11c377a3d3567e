import { defineConfig } from "@playwright/test";

// scripts/e2e.sh picks a free port and a temporary data folder and passes them here.
const port = Number(process.env.E2E_PORT ?? "3100");
const baseURL = `http://127.0.0.1:${port}`;
const serverBinary = process.env.E2E_SERVER_BIN ?? "target/release/docpulse";

export default defineConfig({
  testDir: "./tests",
  timeout: 30_000,
  expect: { timeout: 10_000 },
  forbidOnly: !!process.env.CI,
  retries: 0,
  // Two cores are shared by the server and the browser: one test at a time.
  workers: 1,
  reporter: "list",
  use: {
    baseURL,
    browserName: "chromium",
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      // Without the networking flags Chromium floods the closed network with refused connections.
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
  },
  webServer: {
    command: serverBinary,
    cwd: "..",
    url: `${baseURL}/healthz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: "pipe",
    stderr: "pipe",
    env: {
      LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
      LEPTOS_SITE_ROOT: "target/site",
      DATA_DIR: process.env.E2E_DATA_DIR ?? "target/e2e-data",
      RUST_LOG: process.env.RUST_LOG ?? "warn",
    },
  },
});
