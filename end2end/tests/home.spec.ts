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
    // Until the WASM runs, the button cannot be clicked into silence.
    await expect(home.checkServerButton).toBeDisabled();
  });
});

test("the start page hydrates and checks the server on demand", async ({ page }, testInfo) => {
  const home = new HomePage(page);
  await home.goto();
  await expect(home.serverStatus).toHaveText("Not checked yet.");

  // The button is disabled until hydration, so this click is answered by the WASM.
  await home.checkServerButton.click();

  await expect(home.serverStatus).toHaveText(/^The server is healthy \(version \d+\.\d+\.\d+\)\.$/);
  await expect(home.checkServerButton).toBeEnabled();
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
