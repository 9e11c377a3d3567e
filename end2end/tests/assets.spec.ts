import { expect, test } from "./fixtures/test";

// The release site (scripts/e2e.sh builds it with --precompress and hashed file names): the
// page names its code by content hash, each file is sent in the encoding the request accepts,
// and only the page itself is revalidated.

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
    const path = paths.find((candidate) => candidate.endsWith(`.${extension}`));
    expect(path, `the page names a .${extension} file`).toBeDefined();
    expect(path, "its name carries a hash").toMatch(/^\/pkg\/docpulse\.[\w-]{8,}\.\w+$/);
  }
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
  expect(first.size, "the first visit loads the code, the style and the WASM").toBe(3);
  expect(total(visit), "a repeat visit takes everything from the cache").toBe(0);
});
