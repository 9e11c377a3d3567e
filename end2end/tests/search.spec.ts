import { createAccount } from "./fixtures/accounts";
import { DocumentsPage } from "./fixtures/documents_page";
import { expect, test } from "./fixtures/test";

test("search finds the relevant document with its words marked, and a new upload joins an open query", async ({
  page,
}, testInfo) => {
  const account = createAccount("Library");
  const project = account.projects[0];
  const documents = new DocumentsPage(page);
  await documents.logIn(account);
  const create = (title: string, content: string) =>
    page.request.post("/api/documents", { headers: { "X-Project-Id": project.id }, data: { title, content } });
  expect((await create("rockets.txt", "The Saturn V rocket carried astronauts to the Moon.")).status()).toBe(201);
  expect((await create("bread.txt", "Knead the dough and bake the bread in a hot oven.")).status()).toBe(201);
  await expect(documents.row("rockets.txt")).toHaveAttribute("data-status", "ready");
  await expect(documents.row("bread.txt")).toHaveAttribute("data-status", "ready");

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Search" }).click();
  await page.getByLabel("Search the project's documents").fill("rocket to the moon");
  await page.getByRole("button", { name: "Search", exact: true }).click();

  await expect(page).toHaveURL(/\/search\?q=rocket/);
  const hits = page.getByTestId("search-hit");
  await expect(hits).toHaveCount(2);
  await expect(hits.first().getByRole("link")).toHaveText("rockets.txt");
  await expect(hits.first().locator("mark")).toHaveText(["The", "rocket", "to", "the", "Moon"]);
  await expect(hits.first()).toContainText(/score \d\.\d\d/);

  expect((await create("moon.txt", "A rocket flew to the Moon and back.")).status()).toBe(201);
  const showNew = page.getByRole("button", { name: "Show 1 new result" });
  await expect(showNew).toBeVisible();
  await expect(hits).toHaveCount(2);
  await showNew.click();
  await expect(hits).toHaveCount(3);
  await expect(page.getByTestId("search-results").getByRole("link", { name: "moon.txt" })).toBeVisible();
  await page.screenshot({ path: testInfo.outputPath("search.png"), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  expect(overflow, "no horizontal scrolling").toBe(0);
  await page.screenshot({ path: testInfo.outputPath("search-phone.png"), fullPage: true });

  await hits.first().getByRole("link").click();
  await expect(page.getByRole("heading", { level: 1 })).toBeVisible();
  await expect(page).toHaveURL(/\/documents\/doc_/);
});
