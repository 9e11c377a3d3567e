import { HomePage } from "./fixtures/home_page";
import { expect, test } from "./fixtures/test";

test.describe("without JavaScript", () => {
  test.use({ javaScriptEnabled: false });

  test("the start page is server-rendered and styled", async ({ page }) => {
    const home = new HomePage(page);

    const response = await home.goto();

    expect(response?.status()).toBe(200);
    await expect(home.heading).toHaveText("Every change, live.");
    await expect(page).toHaveTitle("docpulse");
    // The stylesheet is applied: the cards are rounded, not the browser's square default.
    await expect(page.locator(".card").first()).toHaveCSS("border-radius", "12px");
    await expect(home.signInLink).toHaveAttribute("href", "/login");
  });
});

test("signed out, the start page invites to sign in and says nothing of a connection", async ({
  page,
}, testInfo) => {
  const home = new HomePage(page);
  await home.goto();

  await home.signInLink.click();

  await expect(page).toHaveURL("/login");
  await expect(page.getByTestId("connection-state")).toHaveText("");
  await home.goto();
  await expect(home.heading).toHaveText("Every change, live.");
  await page.screenshot({ path: testInfo.outputPath("home.png"), fullPage: true });
});

test("the start page reads well at phone width", async ({ page }, testInfo) => {
  await page.setViewportSize({ width: 390, height: 844 });
  const home = new HomePage(page);
  await home.goto();

  await expect(home.heading).toBeVisible();
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  expect(overflow, "no horizontal scrolling").toBe(0);
  await page.screenshot({ path: testInfo.outputPath("home-phone.png"), fullPage: true });
});

test("an unknown page answers 404 and links back", async ({ page, browserErrors }) => {
  // Chromium reports the 404 of the document itself on the console.
  browserErrors.expectError(/status of 404/);
  const response = await page.goto("/no/such/page");

  expect(response?.status()).toBe(404);
  await expect(page.getByRole("heading", { name: "Page not found" })).toBeVisible();
  await page.getByRole("link", { name: "Back to the start page" }).click();
  await expect(page).toHaveURL("/");
  await expect(new HomePage(page).heading).toHaveText("Every change, live.");
});
