import type { Page } from "@playwright/test";

import { createAccountIn } from "./fixtures/accounts";
import { DocumentsPage } from "./fixtures/documents_page";
import { eventsReceived, startPublishingServer } from "./fixtures/publisher";
import { expect, test } from "./fixtures/test";

/** Tabs of one browser on one project, as the issue counts them. */
const TABS = 6;
/** Events published before and during the change of leader. */
const ROUND = 40;

test("six tabs of one project share one stream, hand it on within a second when the leader closes, and lose nothing", async ({
  context,
  page,
}) => {
  test.setTimeout(120_000);
  const { server, publish: publishEvent, openStreams, dispose } = await startPublishingServer();
  try {
    const account = createAccountIn(server.dataDir, "Shared", "Elsewhere");
    const [shared, elsewhere] = account.projects;
    let published = 0;
    const publish = async (count: number) => {
      for (let index = 0; index < count; index += 1) {
        await publishEvent({ type: "entity.created", entity: "notification", id: `ntf_${published}`, projectId: shared.id });
        published += 1;
      }
    };
    // Which tab opened a stream, and when the first one after the leader's close came back.
    const streamsOf = new Map<Page, number>();
    let streamAfterClose: number | undefined;
    let closedAt: number | undefined;
    const watch = (tab: Page) =>
      tab.on("response", (response) => {
        if (new URL(response.url()).pathname !== "/api/events/stream" || response.status() !== 200) return;
        streamsOf.set(tab, (streamsOf.get(tab) ?? 0) + 1);
        if (closedAt !== undefined && streamAfterClose === undefined) streamAfterClose = Date.now();
      });

    const first = new DocumentsPage(page, server.url);
    watch(page);
    await first.logIn(account);
    await page.goto(`${server.url}/documents?project=${shared.id}`);
    await first.waitUntilLive();
    const tabs = [page];
    while (tabs.length < TABS) {
      const tab = await context.newPage();
      watch(tab);
      await tab.goto(`${server.url}/documents?project=${shared.id}`);
      await new DocumentsPage(tab, server.url).waitUntilLive();
      tabs.push(tab);
    }
    await expect.poll(openStreams, { message: "six tabs, one stream" }).toBe(1);

    await publish(ROUND);
    for (const tab of tabs) {
      await expect.poll(() => eventsReceived(tab, "notification")).toBe(ROUND);
    }
    const leaders = tabs.filter((tab) => (streamsOf.get(tab) ?? 0) > 0);
    expect(leaders, "one tab holds the stream").toHaveLength(1);

    // The leader goes while events keep coming: another tab takes the stream over within a
    // second, and every remaining tab ends with every event exactly once.
    const [leader] = leaders;
    closedAt = Date.now();
    await leader.close();
    await publish(ROUND);
    const remaining = tabs.filter((tab) => tab !== leader);
    for (const tab of remaining) {
      await expect.poll(() => eventsReceived(tab, "notification")).toBe(2 * ROUND);
      await expect(new DocumentsPage(tab, server.url).connection).toHaveText("Live");
    }
    expect(streamAfterClose, "a remaining tab opened the stream").toBeDefined();
    const takeover = (streamAfterClose ?? Number.POSITIVE_INFINITY) - closedAt;
    console.log(`tabs: ${TABS} tabs, 1 stream; takeover ${takeover} ms; ${2 * ROUND} events in each remaining tab`);
    expect(takeover, "takeover within a second").toBeLessThan(1_000);
    await expect.poll(openStreams).toBe(1);

    // An upload from a follower completes: the tabs no longer hold the browser's connections.
    const uploader = new DocumentsPage(remaining[remaining.length - 1], server.url);
    await uploader.upload("from-a-follower.txt", "Uploaded while six tabs watch the project.");
    await expect(uploader.row("from-a-follower.txt")).toBeVisible();
    await expect(new DocumentsPage(remaining[0], server.url).row("from-a-follower.txt")).toBeVisible();

    // A tab of another project has its own stream.
    const other = await context.newPage();
    await other.goto(`${server.url}/documents?project=${elsewhere.id}`);
    await new DocumentsPage(other, server.url).waitUntilLive();
    await expect.poll(openStreams, { message: "one stream per project" }).toBe(2);
  } finally {
    await dispose(context);
  }
});

test("a tab that opens while events arrive is replayed those between its page's data and its joining", async ({
  context,
  page,
}) => {
  const { server, publish, openStreams, dispose } = await startPublishingServer();
  try {
    const account = createAccountIn(server.dataDir, "Replayed");
    const project = account.projects[0].id;
    const leader = new DocumentsPage(page, server.url);
    await leader.logIn(account);
    const created = await page.request.post(`${server.url}/api/documents`, {
      headers: { "X-Project-Id": project },
      data: { title: "draft.txt", content: "A document renamed while a tab opens." },
    });
    expect(created.status()).toBe(201);
    const { id } = await created.json();
    await expect(leader.row("draft.txt")).toBeVisible();

    // The new tab's page is rendered with "draft.txt"; the rename comes after that and before
    // its code runs, so only the leader's replay can bring it.
    const late = await context.newPage();
    const lateDocuments = new DocumentsPage(late, server.url);
    let renamed = false;
    await late.route("**/pkg/*.wasm", async (route) => {
      if (!renamed) {
        renamed = true;
        await publish({ type: "entity.updated", entity: "document", id, projectId: project, data: { title: "final.txt" } });
        await expect(leader.row("final.txt")).toBeVisible();
      }
      await route.continue();
    });
    const rendered = await late.goto(`${server.url}/documents?project=${project}`);
    const html = (await rendered?.text()) ?? "";
    expect(html, "the page was rendered before the rename").toContain("draft.txt");
    expect(html).not.toContain("final.txt");
    await lateDocuments.waitUntilLive();

    await expect(lateDocuments.row("final.txt")).toBeVisible();
    await expect(lateDocuments.rows).toHaveCount(1);
    expect(renamed).toBe(true);
    await expect.poll(openStreams).toBe(1);
  } finally {
    await dispose(context);
  }
});

test("when the session ends under the tabs, a tab signed in again leads the project's stream", async ({
  context,
  page,
  browserErrors,
}) => {
  // The leading tab's renewal is refused: the session ended.
  browserErrors.expectError(/status of 401/);
  const { server, publish, openStreams, dispose } = await startPublishingServer();
  try {
    const account = createAccountIn(server.dataDir, "Again", "Other");
    const [, again] = account.projects;
    const address = `${server.url}/documents?project=${again.id}`;
    const first = new DocumentsPage(page, server.url);
    await first.logIn(account);
    await page.goto(address);
    await first.waitUntilLive();
    const second = await context.newPage();
    const secondDocuments = new DocumentsPage(second, server.url);
    await second.goto(address);
    await secondDocuments.waitUntilLive();

    // A third tab, on another project, logs out: the two tabs' session is over.
    const third = await context.newPage();
    const thirdDocuments = new DocumentsPage(third, server.url);
    await third.goto(`${server.url}/documents?project=${account.projects[0].id}`);
    await thirdDocuments.waitUntilLive();
    await thirdDocuments.logOutButton.click();
    await expect(third).toHaveURL(/\/login$/);
    for (const documents of [first, secondDocuments]) {
      await expect(documents.connection).toHaveText("Updates stopped · sign in again");
    }

    // Signed in again, the third tab shows the project live: no tab of the ended session
    // holds its stream.
    await thirdDocuments.logIn(account);
    await third.goto(address);
    await thirdDocuments.waitUntilLive();
    await publish({ type: "entity.created", entity: "notification", id: "ntf_again", projectId: again.id });
    await expect.poll(() => eventsReceived(third, "notification")).toBe(1);
    await expect.poll(openStreams).toBe(1);
  } finally {
    await dispose(context);
  }
});
