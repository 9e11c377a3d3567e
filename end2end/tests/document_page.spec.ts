import { createAccount } from "./fixtures/accounts";
import { DocumentsPage } from "./fixtures/documents_page";
import { expect, test } from "./fixtures/test";

/** A text that names people and places, in several chunks; one of them only once. */
function story(paragraphs: number): string {
  const paragraph =
    "Ada Lovelace wrote to Charles Babbage from London about the Analytical Engine. " +
    "Charles Babbage answered from Marylebone, and Ada Lovelace published her notes in London. " +
    "Mary Somerville introduced Ada Lovelace to Charles Babbage at a party in London. ";
  const letters = Array.from({ length: paragraphs }, (_, index) => `Letter ${index + 1}. ${paragraph.repeat(3)}`);
  return [...letters, "Augustus De Morgan taught Ada Lovelace mathematics."].join("\n\n");
}

test("a document's page shows its chunks, extraction and graph going live, in every tab, and its deletion", async ({
  page,
}, testInfo) => {
  const account = createAccount("Letters");
  const project = account.projects[0];
  const documents = new DocumentsPage(page);
  await documents.logIn(account);
  const id = await documents.create(project.id, "letters.txt", story(8));

  await documents.row("letters.txt").getByRole("link", { name: "letters.txt" }).click();
  await expect(page).toHaveURL(`/documents/${id}`);
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("letters.txt");
  const secondTab = await page.context().newPage();
  await secondTab.goto(`/documents/${id}`);

  for (const tab of [page, secondTab]) {
    await expect(tab.getByTestId("document-status")).toHaveText("Ready");
    const chunks = tab.getByTestId("chunk-row");
    await expect(chunks.first()).toBeVisible();
    await expect(tab.locator('[data-testid="chunk-row"][data-status="pending"]')).toHaveCount(0);
    await expect(tab.getByTestId("chunk-count")).toHaveText(/^· (\d+) of \1 embedded$/);
    await expect(tab.getByTestId("extraction-state")).toHaveText(/^Done · [\d,]+ entit(y|ies), [\d,]+ relations?$/);
    await expect(tab.getByRole("img", { name: /^Graph of the \d+ most mentioned entities/ })).toBeVisible();
    await expect(tab.getByTestId("entity-list")).toContainText("Ada Lovelace");
    await expect(tab.getByTestId("relation-list")).toContainText("Charles Babbage");
    // Counts agree with their word: one mention, one sentence, many mentions.
    const once = "Augustus De Morgan";
    await expect(tab.getByTestId("entity-list").locator("li", { hasText: once })).toHaveText(`${once} · 1 mention`);
    await expect(tab.getByTestId("relation-list").locator("li", { hasText: once })).toHaveText(
      `Ada Lovelace – ${once} · 1 sentence`,
    );
    await expect(tab.getByTestId("entity-list").locator("li", { hasText: "Ada Lovelace" })).toHaveText(
      /^Ada Lovelace · [\d,]+ mentions$/,
    );
  }
  expect(await page.getByTestId("graph-node").count()).toBeGreaterThan(1);
  await page.screenshot({ path: testInfo.outputPath("document.png"), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  expect(overflow, "no horizontal scrolling").toBe(0);
  await page.screenshot({ path: testInfo.outputPath("document-phone.png"), fullPage: true });

  const deleted = await page.request.delete(`/api/documents/${id}`, {
    headers: { "X-Project-Id": project.id },
  });
  expect(deleted.status()).toBe(204);
  for (const tab of [page, secondTab]) {
    await expect(tab.getByTestId("document-deleted")).toBeVisible();
  }
  await page.getByTestId("document-deleted").getByRole("link", { name: "Back to the documents" }).click();
  await expect(page).toHaveURL(`/documents?project=${project.id}`);
  await expect(documents.row("letters.txt")).toHaveCount(0);

  await secondTab.goto(`/documents/${id}`);
  await expect(secondTab.getByRole("heading", { name: "This document is gone" })).toBeVisible();
});
