import { createAccount, createAccountIn, longText } from "./fixtures/accounts";
import { DocumentsPage } from "./fixtures/documents_page";
import { OwnServer } from "./fixtures/server";
import { expect, test } from "./fixtures/test";

test("without the event stream the page still loads, says updates are paused and refreshes on demand", async ({
  page,
  browserErrors,
}) => {
  // A proxy that does not know the stream route: every attempt answers 404. The stream's
  // worker makes the request, and Chromium does not log a worker's failed loads to the page.
  browserErrors.allowError(/status of 404/);
  await page.route("**/api/events/stream*", (route) =>
    route.fulfill({ status: 404, contentType: "application/json", body: '{"error":{"code":"not_found","message":"no such route"}}' }),
  );
  const account = createAccount("Paused");
  const documents = new DocumentsPage(page);
  await page.goto("/login");
  await page.getByLabel("Email").fill(account.email);
  await page.getByLabel("Password").fill(account.password);
  await page.getByRole("button", { name: "Sign in" }).click();

  await expect(documents.heading).toHaveText("Documents");
  await expect(documents.connection).toContainText("Updates paused");
  const refresh = page.getByRole("button", { name: "Refresh" });
  await expect(refresh).toBeVisible();

  await documents.upload("offline.txt", "Uploaded while live updates are paused.");
  const row = documents.row("offline.txt");
  await expect(row).toBeVisible();
  // No event will say it is ready: the manual refresh loads the current state.
  await expect(async () => {
    await refresh.click();
    await expect(row).toHaveAttribute("data-status", "ready", { timeout: 1_000 });
  }).toPass();
  await expect(documents.progress("offline.txt")).toHaveAttribute("aria-valuetext", "100 %");
});

test("stopping and restarting the server shows Reconnecting then Live, and no update is lost", async ({
  page,
  browserErrors,
}) => {
  // While the server is down, the attempts that reach no one are reported on the console.
  browserErrors.allowError(/ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|ERR_INCOMPLETE_CHUNKED_ENCODING|Failed to fetch/);
  // The stopping server ends the page's stream within a second and tells it `retry:` of 1 to
  // 2 s, which the page honours before it tries the new one.
  const server = await OwnServer.start({ EMBED_DELAY_MS: "250", DEMO_USER: "false", SHUTDOWN_SPREAD_SECS: "1" });
  try {
    const account = createAccountIn(server.dataDir, "Restarts");
    const documents = new DocumentsPage(page, server.url);
    await documents.logIn(account);
    await documents.upload("long-run.txt", longText(16));
    await expect(documents.progress("long-run.txt")).toHaveAttribute("aria-valuetext", /^[1-9]\d? %$/);

    await server.stop();
    await expect(documents.connection).toContainText("reconnecting");
    await server.startAgain();
    // A change the browser has not seen yet: it arrives live, or through the refetch that the
    // new server's resync (its history starts afresh) asks for.
    const created = await page.request.post(`${server.url}/api/documents`, {
      headers: { "X-Project-Id": account.projects[0].id },
      data: { title: "while-away.txt", content: "Written just after the restart." },
    });
    expect(created.status()).toBe(201);

    await expect(documents.connection).toHaveText("Live");
    await expect(documents.row("while-away.txt")).toBeVisible();
    // The interrupted embedding resumes after the restart and its progress still reaches the page.
    await expect(documents.progress("long-run.txt")).toHaveAttribute("aria-valuetext", "100 %", {
      timeout: 20_000,
    });
    await expect(documents.row("long-run.txt")).toHaveAttribute("data-status", "ready");
  } finally {
    await server.dispose();
  }
});

test("a stream that falls silent is given up after 2.5 of its server's heartbeats, and the page is live again once the server answers", async ({
  page,
  browserErrors,
}) => {
  browserErrors.allowError(/ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|ERR_INCOMPLETE_CHUNKED_ENCODING|Failed to fetch/);
  // Heartbeats every 2 s: the page that server renders waits 5 s of silence (the default
  // limit, for heartbeats every 30 s, is 75 s).
  const server = await OwnServer.start({ DEMO_USER: "false", HEARTBEAT_SECS: "2" });
  try {
    const account = createAccountIn(server.dataDir, "Silent");
    const documents = new DocumentsPage(page, server.url);
    await documents.logIn(account);

    // A frozen server keeps the connection open and sends nothing, not even heartbeats: only
    // the page's own count of silence can tell.
    server.pause();
    const frozenAt = Date.now();
    await expect(documents.connection).not.toHaveText("Live", { timeout: 10_000 });
    const givenUpAfter = Date.now() - frozenAt;
    // The last read before the freeze came at most one heartbeat earlier: 3 to 5 s.
    expect(givenUpAfter).toBeGreaterThanOrEqual(2_500);
    console.log(`silence: the page gave the frozen stream up after ${(givenUpAfter / 1000).toFixed(1)} s`);

    server.resume();
    await expect(documents.connection).toHaveText("Live", { timeout: 30_000 });
    await documents.upload("after-the-freeze.txt", "Uploaded once the server answered again.");
    await expect(documents.row("after-the-freeze.txt")).toHaveAttribute("data-status", "ready");
  } finally {
    server.resume();
    await server.dispose();
  }
});

test("under a policy that forbids workers the page reads its stream itself and stays live", async ({
  page,
  browserErrors,
}) => {
  const account = createAccount("NoWorkerPolicy");
  const documents = new DocumentsPage(page);
  await documents.logIn(account);

  // The documents page served with `Content-Security-Policy: worker-src 'none'`: the stream's
  // worker is refused (Chromium logs that), so the page must read the stream itself.
  browserErrors.expectError(/Creating a worker from 'blob:.*' violates the following Content Security Policy directive/);
  await page.route(
    (url) => url.pathname === "/documents",
    async (route) => {
      const response = await route.fetch();
      await route.fulfill({
        response,
        headers: { ...response.headers(), "content-security-policy": "worker-src 'none'" },
      });
    },
  );
  await page.goto("/documents");
  await documents.waitUntilLive();
  await documents.upload("policy.txt", "Read by the page when no worker may start.");
  await expect(documents.row("policy.txt")).toHaveAttribute("data-status", "ready");
  await expect(documents.progress("policy.txt")).toHaveAttribute("aria-valuetext", "100 %");
});

test("in a browser without workers the page reads its stream itself and stays live", async ({ page }) => {
  await page.addInitScript(() => {
    delete (window as { Worker?: unknown }).Worker;
  });
  const account = createAccount("NoWorkers");
  const documents = new DocumentsPage(page);
  await documents.logIn(account);
  expect(await page.evaluate(() => "Worker" in window), "no Worker constructor").toBe(false);
  await documents.upload("plain.txt", "Read by the page in a browser without workers.");
  await expect(documents.row("plain.txt")).toHaveAttribute("data-status", "ready");
  await expect(documents.progress("plain.txt")).toHaveAttribute("aria-valuetext", "100 %");
});
