import { createAccountIn } from "./fixtures/accounts";
import { DocumentsPage } from "./fixtures/documents_page";
import { eventsReceived, startPublishingServer } from "./fixtures/publisher";
import { expect, test } from "./fixtures/test";

/** More documents than the server renders with the page (its first 100). */
const DOCUMENTS = 130;

test("a list longer than its first screen is live at once, loads the rest, and applies the events that came meanwhile", async ({
  page,
}) => {
  // One worker that waits an hour on its first job: every document event the page gets
  // after the load is the one the test publishes.
  const { server, publish, dispose } = await startPublishingServer({ WORKERS: "1", EMBED_DELAY_MS: "3600000" });
  try {
    const account = createAccountIn(server.dataDir, "Long");
    const project = account.projects[0].id;
    const documents = new DocumentsPage(page, server.url);
    await documents.logIn(account);
    const ids: string[] = [];
    for (let index = 0; index < DOCUMENTS; index += 1) {
      const created = await page.request.post(`${server.url}/api/documents`, {
        headers: { "X-Project-Id": project },
        data: { title: `doc-${index}`, content: `Document ${index}.` },
      });
      expect(created.status()).toBe(201);
      ids.push((await created.json()).id);
    }

    // The rest of the list is held until an event about its oldest document (on no first
    // screen) has reached the page: only the page's booking of events can bring it.
    let releaseRest!: () => void;
    const restHeld = new Promise<void>((resolve) => {
      releaseRest = resolve;
    });
    let restAsked = false;
    await page.route(/\/api\/documents\?.*after=/, async (route) => {
      restAsked = true;
      await restHeld;
      await route.continue();
    });
    await page.goto(`${server.url}/documents?project=${project}`);
    await documents.waitUntilLive();
    await expect(documents.count).toHaveText(new RegExp(` · 100 of ${DOCUMENTS} documents, loading more…$`));
    await expect(documents.table).toHaveAttribute("aria-busy", "true");
    await expect.poll(() => restAsked).toBe(true);
    const received = await eventsReceived(page, "document");
    await publish({
      type: "entity.updated",
      entity: "document",
      id: ids[0],
      projectId: project,
      data: { title: "doc-0, renamed while the list loaded" },
    });
    await expect.poll(() => eventsReceived(page, "document")).toBe(received + 1);
    releaseRest();

    await expect(documents.count).toHaveText(new RegExp(` · ${DOCUMENTS} documents$`));
    await expect(documents.table).toHaveAttribute("aria-rowcount", String(DOCUMENTS + 1));
    await expect(documents.table).not.toHaveAttribute("aria-busy", "true");
    await page.getByTestId("documents-scroller").evaluate((scroller) => {
      scroller.scrollTop = scroller.scrollHeight;
    });
    await expect(documents.row("doc-0, renamed while the list loaded")).toBeVisible();
    await expect(documents.row("doc-0")).toHaveCount(0);
    await expect(documents.row("doc-1")).toBeVisible();
  } finally {
    await dispose(page.context());
  }
});
