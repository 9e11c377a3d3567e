import { createAccountIn } from "./fixtures/accounts";
import { DocumentsPage } from "./fixtures/documents_page";
import { eventsReceived, startPublishingServer } from "./fixtures/publisher";
import { expect, test } from "./fixtures/test";

/** How long the page is watched, and how often an event is published meanwhile. */
const WATCH_MS = 60_000;
const PUBLISH_EVERY_MS = 200;

test("with access tokens of 5 seconds the page stays live for a minute, renewing them, and loses no event", async ({
  context,
  page,
}) => {
  test.setTimeout(WATCH_MS + 60_000);
  const { server, publish, dispose } = await startPublishingServer({ ACCESS_TOKEN_SECS: "5" });
  try {
    const account = createAccountIn(server.dataDir, "Renewals");
    const project = account.projects[0].id;
    let renewals = 0;
    let streams = 0;
    page.on("response", (response) => {
      const path = new URL(response.url()).pathname;
      if (path === "/api/auth/refresh" && response.status() === 200) renewals += 1;
      if (path === "/api/events/stream" && response.status() === 200) streams += 1;
    });
    const documents = new DocumentsPage(page, server.url);
    await documents.logIn(account);

    // Every change of the indicator, with the time it happened, recorded in the page.
    await page.evaluate(() => {
      const indicator = document.querySelector('[data-testid="connection-state"]');
      const log: { text: string; at: number }[] = [{ text: indicator?.textContent ?? "", at: performance.now() }];
      (window as unknown as { indicatorLog: typeof log }).indicatorLog = log;
      new MutationObserver(() => log.push({ text: indicator?.textContent ?? "", at: performance.now() })).observe(
        indicator as Node,
        { subtree: true, childList: true, characterData: true },
      );
    });

    let published = 0;
    const started = Date.now();
    while (Date.now() - started < WATCH_MS) {
      await publish({ type: "entity.created", entity: "notification", id: `ntf_${published}`, projectId: project });
      published += 1;
      await page.waitForTimeout(PUBLISH_EVERY_MS);
    }

    // Every event exactly once: the page counts what it dispatched.
    await expect.poll(() => eventsReceived(page, "notification")).toBe(published);
    expect(published).toBeGreaterThan(200);
    expect(renewals, "the access token was renewed at least ten times").toBeGreaterThanOrEqual(10);
    expect(streams, "the stream was resumed with renewed tokens").toBeGreaterThanOrEqual(10);

    const log = await page.evaluate(
      () => (window as unknown as { indicatorLog: { text: string; at: number }[] }).indicatorLog,
    );
    const now = await page.evaluate(() => performance.now());
    const away = log
      .map((entry, index) => ({ text: entry.text, lasted: (log[index + 1]?.at ?? now) - entry.at }))
      .filter((entry) => entry.text !== "Live");
    const longestAway = Math.max(0, ...away.map((entry) => entry.lasted));
    console.log(
      `session renewal: ${published} events, each received once; ${renewals} renewals, ${streams} streams; ` +
        `${away.length} moments away from Live, the longest ${longestAway.toFixed(0)} ms`,
    );
    expect(
      away.filter((entry) => entry.lasted > 1_000),
      "the indicator never left Live for more than a second",
    ).toEqual([]);
    await expect(documents.connection).toHaveText("Live");
  } finally {
    await dispose(context);
  }
});
