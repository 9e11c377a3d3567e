import type { Page } from "@playwright/test";

import { createAccount } from "./fixtures/accounts";
import { DocumentsPage } from "./fixtures/documents_page";
import { HomePage } from "./fixtures/home_page";
import { expect, test } from "./fixtures/test";

/** Every API answer of 401 the page receives, as `METHOD path`. */
function unauthorizedAnswers(page: Page): string[] {
  const answers: string[] = [];
  page.on("response", (response) => {
    if (response.status() === 401) {
      answers.push(`${response.request().method()} ${new URL(response.url()).pathname}`);
    }
  });
  return answers;
}

test("a signed-out reader is sent to sign in, by the server and by the app, and comes back after", async ({
  page,
}) => {
  // The fixture fails the test on any console error: none may come on this path.
  const refusals = unauthorizedAnswers(page);
  const account = createAccount("Returning");
  const project = account.projects[0];

  // A page load: the server answers 303 before rendering anything.
  await page.goto(`/documents?project=${project.id}`);
  await expect(page).toHaveURL(`/login?next=/documents%3Fproject%3D${project.id}`);

  // A client-side navigation: the app goes to sign in without asking the API.
  await page.goto("/login");
  await expect(page.getByRole("button", { name: "Sign in" })).toBeEnabled();
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Documents" }).click();
  await expect(page).toHaveURL("/login?next=/documents");

  await page.getByLabel("Email").fill(account.email);
  await page.getByLabel("Password").fill(account.password);
  await page.getByRole("button", { name: "Sign in" }).click();

  await expect(page).toHaveURL("/documents");
  await new DocumentsPage(page).waitUntilLive();
  expect(refusals, "no request was answered 401").toEqual([]);
});

test("signed in, the start page lists the projects and counts the followed one's documents live", async ({
  page,
}, testInfo) => {
  const account = createAccount("Atlas", "Beacon");
  const [atlas, beacon] = account.projects;
  const documents = new DocumentsPage(page);
  await documents.logIn(account);
  await page.getByRole("link", { name: "docpulse" }).click();

  const home = new HomePage(page);
  await expect(home.heading).toHaveText("Your projects");
  await expect(home.projectCards).toHaveCount(2);
  const followed = home.project(atlas.name);
  await expect(followed.getByTestId("project-total")).toHaveText("0 documents");
  await expect(followed.getByText("Live", { exact: true })).toBeVisible();
  await expect(home.project(beacon.name).getByText("Live", { exact: true })).toHaveCount(0);
  await expect(documents.connection).toHaveText("Live");

  const created = await page.request.post("/api/documents", {
    headers: { "X-Project-Id": atlas.id },
    data: { title: "atlas.txt", content: "A document about maps and charts." },
  });
  expect(created.status()).toBe(201);

  await expect(followed.getByTestId("project-total")).toHaveText("1 document");
  await expect(followed.getByTestId("project-progress")).toHaveText("Nothing in progress · 1 ready");
  await page.screenshot({ path: testInfo.outputPath("home-signed-in.png"), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  expect(overflow, "no horizontal scrolling").toBe(0);
  await page.screenshot({ path: testInfo.outputPath("home-signed-in-phone.png"), fullPage: true });

  await followed.getByRole("link", { name: atlas.name }).click();
  await expect(page).toHaveURL(`/documents?project=${atlas.id}`);
  await expect(documents.row("atlas.txt")).toBeVisible();
});
