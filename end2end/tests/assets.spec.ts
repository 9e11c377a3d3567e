import { createAccount } from "./fixtures/accounts";
import { DocumentsPage } from "./fixtures/documents_page";
import { expect, test } from "./fixtures/test";

// The release site (scripts/e2e.sh builds it with --precompress, --split and hashed file
// names): the page names its code by content hash, each file is sent in the encoding the
// request accepts, only the page itself is revalidated, and a page's own code is a module
// that loads with that page.

/** A file name with its content hash: `docpulse.<hash>.wasm`, `chunk_3.<hash>.wasm`, … */
const HASHED = /^\/pkg\/\w+\.[\w-]{22}\.(?:wasm|js|css)$/;
/** The modules of the lazily loaded routes and the code they share. */
const ROUTE_MODULE = /\/pkg\/(?:split_|chunk_)/;

/** The app's code and style as the start page names them. */
async function assetPaths(request: import("@playwright/test").APIRequestContext) {
  const page = await request.get("/");
  expect(page.status()).toBe(200);
  expect(page.headers()["cache-control"]).toBe("no-cache");
  const html = await page.text();
  const paths = [...html.matchAll(/\/pkg\/[\w.-]+\.(?:wasm|js|css)/g)].map((match) => match[0]);
  return [...new Set(paths)];
}

test("the page names its code and style by content hash and is revalidated", async ({
  request,
}) => {
  const paths = await assetPaths(request);

  for (const extension of ["wasm", "js", "css"]) {
    const path = paths.find((candidate) => candidate.startsWith("/pkg/docpulse.") && candidate.endsWith(`.${extension}`));
    expect(path, `the page names docpulse's .${extension} file`).toBeDefined();
  }
  for (const path of paths) {
    expect(path, "its name carries a hash").toMatch(HASHED);
  }
  // The start page's route is loaded lazily: the page names its module, so that it loads
  // beside the main module rather than after it.
  expect(paths.some((path) => /\/pkg\/split_home_page\./.test(path)), "the page preloads its route's module").toBe(true);
});

test("each file goes in the encoding the request accepts, cached for a year", async ({
  request,
}) => {
  const paths = await assetPaths(request);
  const cases = [
    { accept: "br, gzip", encoding: "br" },
    { accept: "gzip", encoding: "gzip" },
    { accept: "identity", encoding: undefined },
  ];
  for (const path of paths) {
    const sizes: Record<string, number> = {};
    for (const { accept, encoding } of cases) {
      const response = await request.get(path, { headers: { "Accept-Encoding": accept } });
      const headers = response.headers();
      expect(response.status(), path).toBe(200);
      expect(headers["content-encoding"], `${path} for ${accept}`).toBe(encoding);
      expect(headers["vary"]?.toLowerCase(), path).toContain("accept-encoding");
      expect(headers["cache-control"], path).toBe("public, max-age=31536000, immutable");
      sizes[accept] = Number(headers["content-length"]);
    }
    expect(sizes["br, gzip"], `${path}: brotli is smaller than the file`).toBeLessThan(
      sizes["identity"],
    );
  }
});

test("a file that does not exist is a 404, not a cached answer", async ({ request }) => {
  const response = await request.get("/pkg/docpulse.0000000000.wasm");

  expect(response.status()).toBe(404);
  expect(response.headers()["cache-control"]).toBeUndefined();
});

test("a first visit fetches the app's code compressed, a repeat visit none of it", async ({
  page,
}) => {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  const urls = new Map<string, string>();
  let visit = new Map<string, number>();
  cdp.on("Network.requestWillBeSent", (event) => urls.set(event.requestId, event.request.url));
  cdp.on("Network.loadingFinished", (event) => {
    const url = urls.get(event.requestId) ?? "";
    if (url.includes("/pkg/")) visit.set(url, event.encodedDataLength);
  });

  // The sign-in button is enabled once the WASM has run.
  await page.goto("/login");
  await expect(page.getByRole("button", { name: "Sign in" })).toBeEnabled();
  const first = visit;
  visit = new Map();
  await page.goto("/login");
  await expect(page.getByRole("button", { name: "Sign in" })).toBeEnabled();

  const total = (sizes: Map<string, number>) => [...sizes.values()].reduce((a, b) => a + b, 0);
  console.log(`app code on the wire: first visit ${total(first)} bytes, repeat visit ${total(visit)} bytes`);
  const names = [...first.keys()].map((url) => new URL(url).pathname.replace(/\.[\w-]{22}\./, "."));
  expect(names.sort(), "the first visit loads the code, the module loader, the style and the WASM").toEqual([
    "/pkg/__wasm_split.js",
    "/pkg/docpulse.css",
    "/pkg/docpulse.js",
    "/pkg/docpulse.wasm",
  ]);
  expect(total(visit), "a repeat visit takes everything from the cache").toBe(0);
});

test("a page's own code loads when the reader first goes to it", async ({ page }) => {
  const fetched: string[] = [];
  page.on("requestfinished", (request) => {
    if (ROUTE_MODULE.test(request.url())) fetched.push(new URL(request.url()).pathname);
  });
  const routes = () => new Set(fetched.flatMap((path) => path.match(/split_(\w+?)_page\./)?.[1] ?? []));

  // Signing in leads to the documents page, whose code is in the main module.
  const documents = new DocumentsPage(page);
  await documents.logIn(createAccount("Modules"));
  expect(routes().has("search"), "the documents page did not fetch the search page's module").toBe(false);

  // A link to another page fetches that page's module before rendering it.
  await page.getByRole("link", { name: "Search", exact: true }).click();
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Search");
  await expect.poll(() => routes().has("search")).toBe(true);

  // The search page again, after the documents page: its module is not fetched again.
  const before = fetched.length;
  await page.getByRole("link", { name: "Documents", exact: true }).click();
  await documents.waitUntilLive();
  await page.getByRole("link", { name: "Search", exact: true }).click();
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Search");
  expect(fetched.length, "a module is fetched once per page load").toBe(before);
});

test("pointing at a link starts fetching its page's module before the click", async ({ page }) => {
  const requested = new Set<string>();
  page.on("request", (request) => {
    const name = request.url().match(/\/pkg\/split_(\w+?)_page\./)?.[1];
    if (name) requested.add(name);
  });
  const account = createAccount("Prefetch");
  const documents = new DocumentsPage(page);
  await documents.logIn(account);
  await documents.create(account.projects[0].id, "pointed.txt", "A document whose page is fetched ahead.");

  const link = documents.row("pointed.txt").getByRole("link", { name: "pointed.txt" });
  await link.hover();
  await expect.poll(() => requested.has("document"), "fetched before the click").toBe(true);
  await link.click();
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("pointed.txt");

  // The main navigation's search link, reached by the keyboard.
  expect(requested.has("search")).toBe(false);
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Search" }).focus();
  await expect.poll(() => requested.has("search"), "fetched on focus").toBe(true);
});

test("a page whose code cannot be fetched is loaded afresh from the server, not left dead", async ({
  page,
  browserErrors,
}) => {
  // The module loader reports the failed fetch; Chromium reports the refused request.
  browserErrors.expectError(/Failed to fetch/);
  browserErrors.allowError(/Failed to load resource/);
  // The document page's module cannot be fetched by the documents page (pointing at the
  // table would fetch it ahead, so from the start), as it would be offline or after a
  // deploy replaced it; a fresh load of a document's page gets it.
  let refusing = true;
  let refused = 0;
  page.on("request", (request) => {
    if (request.isNavigationRequest() && new URL(request.url()).pathname.startsWith("/documents/doc_")) refusing = false;
  });
  await page.route(/\/pkg\/split_document_page\./, (route) => {
    if (!refusing) return route.continue();
    refused += 1;
    return route.abort();
  });
  const account = createAccount("Refused module");
  const documents = new DocumentsPage(page);
  await documents.logIn(account);
  const id = await documents.create(account.projects[0].id, "refused.txt", "A page whose code is refused.");
  await page.evaluate(() => Object.assign(window, { loadedBefore: true }));
  await documents.row("refused.txt").getByRole("link", { name: "refused.txt" }).click();

  await expect(page).toHaveURL(`/documents/${id}`);
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("refused.txt");
  // Live: the fresh page's code runs and follows the project's stream.
  await documents.connection.filter({ hasText: "Live" }).waitFor();
  expect(await page.evaluate(() => "loadedBefore" in window), "the browser loaded the page afresh").toBe(false);
  expect(refused, "the module was refused before the page was loaded afresh").toBeGreaterThanOrEqual(1);
});
