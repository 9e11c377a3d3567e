import { createAccount, longText } from "./fixtures/accounts";
import { DocumentsPage } from "./fixtures/documents_page";
import { openStreams } from "./fixtures/publisher";
import { expect, test } from "./fixtures/test";

test("an upload shows its progress live until ready, in every tab of its project and nowhere else", async ({
  page,
  browser,
}) => {
  const alice = createAccount("Engines");
  const bob = createAccount("Elsewhere");
  const documents = new DocumentsPage(page);
  await documents.logIn(alice);
  await expect(documents.rows).toHaveCount(0);
  await expect(documents.table).toContainText("No documents yet");

  const secondTab = new DocumentsPage(await page.context().newPage());
  await secondTab.page.goto("/documents");
  await secondTab.waitUntilLive();
  const bobContext = await browser.newContext();
  const bobPage = new DocumentsPage(await bobContext.newPage());
  await bobPage.logIn(bob);

  let navigations = 0;
  page.on("framenavigated", (frame) => {
    if (frame === page.mainFrame()) navigations += 1;
  });

  await documents.upload("engines.txt", longText(4));

  const row = documents.row("engines.txt");
  await expect(row).toBeVisible();
  await expect(page.getByRole("status").filter({ hasText: "Uploaded 1 document." })).toBeVisible();
  // Part way: some chunks embedded, not all.
  await expect(documents.progress("engines.txt")).toHaveAttribute("aria-valuetext", /^[1-9]\d? %$/);
  await expect(row.getByText("Embedding")).toBeVisible();
  await expect(documents.progress("engines.txt")).toHaveAttribute("aria-valuetext", "100 %");
  await expect(documents.progress("engines.txt")).toHaveAttribute("aria-valuemax", "4");
  await expect(documents.progress("engines.txt")).toHaveAttribute("aria-valuenow", "4");
  await expect(row).toHaveAttribute("data-status", "ready");
  await expect(row.getByText("Ready")).toBeVisible();
  expect(navigations, "the page was never reloaded").toBe(0);

  await expect(secondTab.progress("engines.txt")).toHaveAttribute("aria-valuetext", "100 %");
  await expect(secondTab.row("engines.txt")).toHaveAttribute("data-status", "ready");

  await expect(bobPage.connection).toHaveText("Live");
  await expect(bobPage.rows).toHaveCount(0);
  await expect(bobPage.page.getByText("engines.txt")).toHaveCount(0);
  await bobContext.close();
});

test("a dropped file is uploaded, and deleting it removes its row in every tab", async ({ page }) => {
  const account = createAccount("Drops");
  const documents = new DocumentsPage(page);
  await documents.logIn(account);
  const secondTab = new DocumentsPage(await page.context().newPage());
  await secondTab.page.goto("/documents");
  await secondTab.waitUntilLive();

  const dataTransfer = await page.evaluateHandle(() => {
    const transfer = new DataTransfer();
    transfer.items.add(new File(["# Dropped\n\nA short note."], "dropped.md", { type: "text/markdown" }));
    return transfer;
  });
  await documents.uploadZone.dispatchEvent("drop", { dataTransfer });

  await expect(documents.row("dropped.md")).toHaveAttribute("data-status", "ready");
  await expect(secondTab.row("dropped.md")).toHaveAttribute("data-status", "ready");
  await expect(documents.count).toContainText("1 document");

  await page.getByRole("button", { name: "Delete dropped.md" }).click();

  await expect(documents.row("dropped.md")).toHaveCount(0);
  await expect(secondTab.row("dropped.md")).toHaveCount(0);
  await expect(documents.count).toContainText("0 documents");
});

test("switching projects swaps the table and its live updates", async ({ page }) => {
  const account = createAccount("First", "Second");
  const [first, second] = account.projects;
  const documents = new DocumentsPage(page);
  await documents.logIn(account);
  await expect(documents.count).toContainText(first.name);
  await documents.upload("first.txt", "Only in the first project.");
  await expect(documents.row("first.txt")).toBeVisible();

  await documents.projectSelect.selectOption({ label: second.name });

  await expect(page).toHaveURL(new RegExp(`project=${second.id}`));
  await expect(documents.count).toContainText(second.name);
  await expect(documents.row("first.txt")).toHaveCount(0);
  await expect(documents.connection).toHaveText("Live");
  const create = (project: string, title: string) =>
    page.request.post("/api/documents", {
      headers: { "X-Project-Id": project },
      data: { title, content: `A document called ${title}.` },
    });
  expect((await create(first.id, "elsewhere.txt")).status()).toBe(201);
  expect((await create(second.id, "second.txt")).status()).toBe(201);
  await expect(documents.row("second.txt")).toBeVisible();
  await expect(documents.row("elsewhere.txt")).toHaveCount(0);

  await documents.projectSelect.selectOption({ label: first.name });

  await expect(documents.row("first.txt")).toBeVisible();
  await expect(documents.row("elsewhere.txt")).toBeVisible();
  await expect(documents.row("second.txt")).toHaveCount(0);
});

test("logging out ends the stream and closes the documents page", async ({ page, baseURL }) => {
  const account = createAccount("Leaving");
  const documents = new DocumentsPage(page);
  await documents.logIn(account);
  await expect.poll(() => openStreams(baseURL ?? "")).toBe(1);

  await documents.logOutButton.click();

  await expect(page).toHaveURL(/\/login$/);
  await expect(documents.connection).toHaveText("");
  await expect.poll(() => openStreams(baseURL ?? "")).toBe(0);
  await page.goto("/documents");
  await expect(page).toHaveURL(/\/login\?next=\/documents$/);
  await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
});

test("a wrong password is refused on the page", async ({ page, browserErrors }) => {
  // Chromium reports the 401 of the login request on the console.
  browserErrors.expectError(/status of 401/);
  const account = createAccount("Refused");
  await page.goto("/login");
  await page.getByLabel("Email").fill(account.email);
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Sign in" }).click();

  await expect(page.getByRole("alert")).toHaveText("Wrong email or password.");
  await expect(page).toHaveURL(/\/login$/);
});

test("what was typed before the page hydrated is what signs in", async ({ page }) => {
  const account = createAccount("Early");
  // Hold the WASM back until the fields are filled, so the typing surely comes first.
  let release: () => void = () => {};
  const filled = new Promise<void>((resolve) => {
    release = resolve;
  });
  await page.route("**/pkg/*.wasm", async (route) => {
    await filled;
    await route.continue();
  });
  await page.goto("/login");
  await page.getByLabel("Email").fill(account.email);
  await page.getByLabel("Password").fill(account.password);
  release();

  await page.getByRole("button", { name: "Sign in" }).click();

  await expect(page).toHaveURL(/\/documents/);
  await expect(new DocumentsPage(page).connection).toHaveText("Live");
});

test.describe("without JavaScript", () => {
  test.use({ javaScriptEnabled: false });

  test("the documents page is server-rendered with its data", async ({ page }) => {
    const account = createAccount("Static");
    const login = await page.request.post("/api/auth/login", {
      data: { email: account.email, password: account.password },
    });
    expect(login.status()).toBe(200);
    const created = await page.request.post("/api/documents", {
      headers: { "X-Project-Id": account.projects[0].id },
      data: { title: "rendered.txt", content: "Rendered by the server." },
    });
    expect(created.status()).toBe(201);

    await page.goto("/documents");

    const documents = new DocumentsPage(page);
    await expect(documents.heading).toHaveText("Documents");
    await expect(documents.row("rendered.txt")).toBeVisible();
    await expect(documents.progress("rendered.txt")).toHaveAttribute("aria-valuemax", /^\d+$/);
    await expect(page.locator(".table-wrap")).toHaveCSS("border-radius", "12px");
  });
});

test("the login and documents pages read well on a desktop and at phone width", async ({ page }, testInfo) => {
  const account = createAccount("Archive");
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto("/login");
  await expect(page.getByRole("button", { name: "Sign in" })).toBeEnabled();
  await page.screenshot({ path: testInfo.outputPath("login.png"), fullPage: true });

  const documents = new DocumentsPage(page);
  await documents.logIn(account);
  await documents.upload("difference-engine.txt", longText(2));
  await expect(documents.row("difference-engine.txt")).toHaveAttribute("data-status", "ready");
  await documents.upload("analytical-engine.md", longText(40));
  await expect(documents.progress("analytical-engine.md")).toHaveAttribute("aria-valuetext", /^[1-9]\d? %$/);
  await page.screenshot({ path: testInfo.outputPath("documents.png"), fullPage: true });

  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  expect(overflow, "no horizontal scrolling").toBe(0);
  await expect(documents.progress("analytical-engine.md")).toBeVisible();
  await expect(page.getByRole("button", { name: "Delete analytical-engine.md" })).toBeVisible();
  await page.screenshot({ path: testInfo.outputPath("documents-phone.png"), fullPage: true });
});

test("sorting by a column orders the whole list, and a new document lands in its sorted place", async ({
  page,
}) => {
  const account = createAccount("Sorting");
  const documents = new DocumentsPage(page);
  await documents.logIn(account);
  for (const name of ["banana.md", "apple.txt", "cherry.md"]) {
    await documents.upload(name, `# ${name}\n\nA few words about ${name}.`);
    await expect(documents.row(name)).toBeVisible();
  }
  const titles = documents.rows.getByRole("rowheader");
  await expect(titles).toHaveText(["cherry.md", "apple.txt", "banana.md"]);

  const titleHeader = page.getByRole("columnheader", { name: "Title" });
  await expect(titleHeader).toHaveAttribute("aria-sort", "none");
  await page.getByRole("button", { name: "Title", exact: true }).click();
  await expect(titleHeader).toHaveAttribute("aria-sort", "ascending");
  await expect(titles).toHaveText(["apple.txt", "banana.md", "cherry.md"]);

  await page.getByRole("button", { name: "Title", exact: true }).click();
  await expect(titleHeader).toHaveAttribute("aria-sort", "descending");
  await expect(titles).toHaveText(["cherry.md", "banana.md", "apple.txt"]);

  await documents.upload("avocado.md", "# Avocado\n\nGreen.");
  await expect(titles).toHaveText(["cherry.md", "banana.md", "avocado.md", "apple.txt"]);
  await expect(documents.row("avocado.md")).toHaveAttribute("aria-rowindex", "4");
});

test("renaming a document in place shows the new title in every tab; Escape keeps the old one", async ({
  page,
}) => {
  const account = createAccount("Renames");
  const documents = new DocumentsPage(page);
  await documents.logIn(account);
  await documents.create(account.projects[0].id, "notes.txt", "Notes of a meeting.");
  const secondTab = new DocumentsPage(await page.context().newPage());
  await secondTab.page.goto("/documents");
  await secondTab.waitUntilLive();
  await expect(secondTab.row("notes.txt")).toBeVisible();

  await page.getByRole("button", { name: "Rename notes.txt" }).click();
  const field = page.getByRole("textbox", { name: "New title" });
  await expect(field).toBeFocused();
  await field.fill("Draft");
  await field.press("Escape");
  await expect(documents.row("notes.txt")).toBeVisible();

  await page.getByRole("button", { name: "Rename notes.txt" }).click();
  await field.fill("Meeting notes");
  await field.press("Enter");

  await expect(documents.row("Meeting notes")).toBeVisible();
  await expect(secondTab.row("Meeting notes")).toBeVisible();
  await expect(secondTab.row("notes.txt")).toHaveCount(0);
});
