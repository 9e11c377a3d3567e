import { createAccountIn } from "./fixtures/accounts";
import { DocumentsPage } from "./fixtures/documents_page";
import { OwnServer } from "./fixtures/server";
import { expect, test } from "./fixtures/test";

const DOCUMENTS = 300;

test("a long table renders only the rows in view, scrolls to every row and keeps them live", async ({ page }) => {
  test.setTimeout(60_000);
  const server = await OwnServer.start({ EMBED_DELAY_MS: "0", DEMO_USER: "false" });
  try {
    const account = createAccountIn(server.dataDir, "Library");
    const project = account.projects[0].id;
    const documents = new DocumentsPage(page, server.url);
    await documents.logIn(account);
    for (let index = 0; index < DOCUMENTS; index += 1) {
      const created = await page.request.post(`${server.url}/api/documents`, {
        headers: { "X-Project-Id": project },
        data: { title: `book-${String(index).padStart(3, "0")}.txt`, content: `Book number ${index}.` },
      });
      expect(created.status()).toBe(201);
    }
    await page.reload();
    await documents.waitUntilLive();

    await expect(documents.table).toHaveAttribute("aria-rowcount", String(DOCUMENTS + 1));
    await expect(documents.count).toContainText(`${DOCUMENTS} documents`);
    // Newest first: the last book is on top, the first one far below.
    await expect(documents.row("book-299.txt")).toHaveAttribute("aria-rowindex", "2");
    const rendered = await documents.rows.count();
    expect(rendered, "only the rows in view and a margin are in the page").toBeLessThanOrEqual(50);
    await expect(documents.row("book-000.txt")).toHaveCount(0);

    await page.getByTestId("documents-scroller").evaluate((scroller) => {
      scroller.scrollTop = scroller.scrollHeight;
    });
    await expect(documents.row("book-000.txt")).toBeVisible();
    await expect(documents.row("book-000.txt")).toHaveAttribute("aria-rowindex", String(DOCUMENTS + 1));
    await expect(documents.row("book-299.txt")).toHaveCount(0);

    // A row out of view keeps changing; it shows its latest state when it scrolls in.
    const renamed = await page.request.get(`${server.url}/api/documents`, { headers: { "X-Project-Id": project } });
    const top = (await renamed.json()).documents[0];
    const patched = await page.request.patch(`${server.url}/api/documents/${top.id}`, {
      headers: { "X-Project-Id": project },
      data: { title: "renamed-while-away.txt" },
    });
    expect(patched.status()).toBe(200);
    await page.getByTestId("documents-scroller").evaluate((scroller) => {
      scroller.scrollTop = 0;
    });
    await expect(documents.row("renamed-while-away.txt")).toHaveAttribute("aria-rowindex", "2");
  } finally {
    await server.dispose();
  }
});
