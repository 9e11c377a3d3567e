import { createAccount } from "./fixtures/accounts";
import { DocumentsPage } from "./fixtures/documents_page";
import { expect, test } from "./fixtures/test";

test("a document becoming ready is a toast in the other tab that takes no focus, and stays behind the bell", async ({
  page,
}, testInfo) => {
  const account = createAccount("Notices");
  const documents = new DocumentsPage(page);
  await documents.logIn(account);
  const other = new DocumentsPage(await page.context().newPage());
  let documentModuleFetched = false;
  other.page.on("request", (request) => {
    if (/\/pkg\/split_document_page\./.test(request.url())) documentModuleFetched = true;
  });
  await other.page.goto("/documents");
  await other.waitUntilLive();
  await other.projectSelect.focus();

  await documents.upload("minutes.txt", "Ada Lovelace met Charles Babbage in London.");

  const toasts = other.page.getByTestId("toast");
  await expect(toasts.filter({ hasText: "minutes.txt is ready" })).toBeVisible();
  await expect(other.projectSelect, "the toast took no focus").toBeFocused();
  await expect(toasts.filter({ hasText: "Entities found in minutes.txt" })).toBeVisible();
  const bell = other.page.getByRole("button", { name: /^Notifications, \d+ unread$/ });
  await expect(bell).toHaveAccessibleName("Notifications, 2 unread");
  await other.page.screenshot({ path: testInfo.outputPath("notifications.png") });
  await other.page.emulateMedia({ colorScheme: "dark" });
  await other.page.screenshot({ path: testInfo.outputPath("notifications-dark.png") });
  await other.page.emulateMedia({ colorScheme: "light" });

  await bell.click();
  const list = other.page.getByTestId("notification-list");
  await expect(list.getByRole("listitem")).toHaveCount(2);
  await expect(list.getByRole("listitem").first()).toContainText("Entities found in minutes.txt");
  await expect(other.page.getByRole("button", { name: "Notifications", exact: true })).toHaveAttribute(
    "aria-expanded",
    "true",
  );
  // Pointing at the link fetches the document page's module before the click.
  const open = list.getByRole("listitem").last().getByRole("link", { name: "Open" });
  expect(documentModuleFetched, "nothing had fetched it yet").toBe(false);
  await open.hover();
  await expect.poll(() => documentModuleFetched, "fetched before the click").toBe(true);
  await open.click();
  await expect(other.page).toHaveURL(/\/documents\/doc_/);
  await expect(other.page.getByRole("heading", { level: 1 })).toHaveText("minutes.txt");
});
