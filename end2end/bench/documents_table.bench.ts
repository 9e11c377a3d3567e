import { expect, test } from "@playwright/test";

import { createAccount } from "../tests/fixtures/accounts";
import { DocumentsPage } from "../tests/fixtures/documents_page";
import { eventsReceived, publishAtRate, publisherToken, recordMainThread, scrollThrough, usPerEvent, token } from "./measure";

const DOCUMENTS = Number(process.env.BENCH_DOCUMENTS ?? "5000");
const RATE = Number(process.env.BENCH_RATE ?? "1000");
const SECONDS = Number(process.env.BENCH_SECONDS ?? "10");
// A column header to sort by before the burst ("Title": every event then changes a sort key).
const SORT = process.env.BENCH_SORT || undefined;

/** Runs `work` over `items` with at most `limit` in flight. */
async function inParallel<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const item = items[next];
        next += 1;
        await work(item);
      }
    }),
  );
}

test("5,000 documents take 1,000 updates a second without long frames", async ({ page }) => {
  const account = createAccount("Bench");
  const project = account.projects[0].id;
  const origin = test.info().project.use.baseURL ?? "";
  const headers = { "X-Project-Id": project };

  const documents = new DocumentsPage(page);
  await documents.logIn(account);
  // Seeded with no page open (an open documents page would take every creation live) and
  // through Node's fetch: the page's request context, a recorded step per request, made 57
  // documents a second here.
  await page.goto("about:blank");
  const seeder = token({ sub: "bench-seeder", exp: Math.floor(Date.now() / 1000) + 3600, projects: [project] });
  const indices = Array.from({ length: DOCUMENTS }, (_, index) => index);
  await inParallel(indices, 8, async (index) => {
    const response = await fetch(`${origin}/api/documents`, {
      method: "POST",
      headers: { ...headers, Authorization: `Bearer ${seeder}`, "Content-Type": "application/json" },
      body: JSON.stringify({ title: `bench-${index}`, content: `Benchmark document ${index}.` }),
    });
    // A plain check: Playwright records each `expect` as a step of the report, which for
    // 100,000 documents cost more than the requests.
    if (response.status !== 201) throw new Error(`creating document ${index}: ${response.status}`);
    // Read, so the connection goes back to the pool.
    await response.arrayBuffer();
  });
  const list = await (await page.request.get("/api/documents", { headers })).json();
  const ids: string[] = list.documents.map((document: { id: string }) => document.id);

  // Time to interactive: from navigation to the table hydrated with its stream open.
  const navigationStart = Date.now();
  await page.goto("/documents");
  await expect(documents.connection).toHaveText("Live", { timeout: 60_000 });
  const timeToLive = Date.now() - navigationStart;
  const navigation = await page.evaluate(() => {
    const entry = performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming;
    return { domContentLoaded: entry.domContentLoadedEventEnd, load: entry.loadEventEnd };
  });
  await expect(documents.table).toHaveAttribute("aria-rowcount", String(DOCUMENTS + 1));
  if (SORT) {
    await page.getByRole("button", { name: SORT, exact: true }).click();
    await expect(page.getByRole("columnheader", { name: SORT, exact: true })).toHaveAttribute("aria-sort", /ending$/);
  }

  const receivedBefore = await eventsReceived(page, "document");

  // Publish RATE events a second for SECONDS seconds, one document after another, so that
  // no two events for a document fall in one coalescing window.
  const expected = new Map<string, { title: string; embedded: number }>();
  const stop = await recordMainThread(page);
  const publishing = await publishAtRate(origin, publisherToken(project), RATE * SECONDS, RATE, (sent) => {
    const id = ids[sent % ids.length];
    const round = Math.floor(sent / ids.length);
    const data = { title: `bench-${id}-v${round}`, embeddedChunks: (sent % 97) + 1, chunks: 100, status: "embedding" };
    expected.set(id, { title: data.title, embedded: data.embeddedChunks });
    return { type: "entity.updated", entity: "document", id, projectId: project, data };
  });
  await expect
    .poll(() => eventsReceived(page, "document"), { timeout: 60_000 })
    .toBeGreaterThanOrEqual(receivedBefore + publishing.published);
  const measured = await stop();
  const received = (await eventsReceived(page, "document")) - receivedBefore;

  // Every updated document ends with its last value: scroll through the whole table.
  const seen = new Map<string, { title: string; embedded: number }>();
  await scrollThrough(page, page.getByTestId("documents-scroller"), 30 * 52, async () => {
    const rows = await page.getByTestId("document-row").evaluateAll((elements) =>
      elements.map((element) => ({
        id: element.getAttribute("data-document-id") ?? "",
        title: element.querySelector(".title")?.textContent ?? "",
        embedded: Number(element.querySelector("[role=progressbar]")?.getAttribute("aria-valuenow")),
      })),
    );
    for (const row of rows) seen.set(row.id, { title: row.title, embedded: row.embedded });
  });
  const wrong = [...expected].filter(([id, value]) => {
    const shown = seen.get(id);
    return !shown || shown.title !== value.title || shown.embedded !== value.embedded;
  });

  const report = {
    documents: DOCUMENTS,
    sortedBy: SORT || "added (default)",
    rate: RATE,
    seconds: SECONDS,
    ...publishing,
    received,
    ...measured,
    mainThreadUsPerEvent: usPerEvent(measured.mainThreadMs, received),
    rendererUsPerEvent: usPerEvent(measured.rendererCpuMs, received),
    documentsChecked: seen.size,
    documentsWithWrongFinalValue: wrong.length,
    timeToLiveMs: timeToLive,
    navigation,
  };
  console.log(`documents table benchmark: ${JSON.stringify(report, null, 2)}`);
  expect(wrong).toEqual([]);
  expect(received).toBe(publishing.published);
});
