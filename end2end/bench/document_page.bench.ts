import { expect, test } from "@playwright/test";

import { createAccount } from "../tests/fixtures/accounts";
import { DocumentsPage } from "../tests/fixtures/documents_page";
import { eventsReceived, publishAtRate, publisherToken, recordMainThread, scrollThrough, usPerEvent } from "./measure";

const CHUNKS = Number(process.env.BENCH_CHUNKS ?? "2000");
const RATE = Number(process.env.BENCH_RATE ?? "1000");
const SECONDS = Number(process.env.BENCH_SECONDS ?? "10");
/** Each paragraph is its own chunk: two do not fit in one (800 characters). */
const PARAGRAPH_CHARS = 450;

test("a 2,000-chunk document page takes 1,000 chunk updates a second without long frames", async ({ page }) => {
  const account = createAccount("Bench");
  const project = account.projects[0].id;
  const origin = test.info().project.use.baseURL ?? "";
  const headers = { "X-Project-Id": project };

  await new DocumentsPage(page).logIn(account);
  const content = Array.from({ length: CHUNKS }, (_, index) =>
    `Paragraph ${index} of the benchmark document. `.padEnd(PARAGRAPH_CHARS, "word "),
  ).join("\n\n");
  const created = await page.request.post("/api/documents", { headers, data: { title: "Bench document", content } });
  expect(created.status()).toBe(201);
  const { id } = await created.json();
  // The one worker splits the document, then pauses an hour before its first embedding.
  let chunkIds: string[] = [];
  await expect
    .poll(
      async () => {
        const pipeline = await (await page.request.get(`/api/documents/${id}/pipeline`, { headers })).json();
        chunkIds = (pipeline.chunks ?? []).map((chunk: { id: string }) => chunk.id);
        return chunkIds.length;
      },
      { timeout: 60_000 },
    )
    .toBe(CHUNKS);

  const navigationStart = Date.now();
  await page.goto(`/documents/${id}?project=${project}`);
  await expect(page.getByTestId("connection-state")).toHaveText("Live", { timeout: 60_000 });
  const timeToLive = Date.now() - navigationStart;
  const count = page.getByTestId("chunk-count");
  await expect(count).toHaveText(`· 0 of ${CHUNKS} embedded`);
  const receivedBefore = await eventsReceived(page, "chunk");

  // Each chunk in turn, RATE a second: embedded, then pending again on the next round, and
  // so on; the last round leaves the chunks of even rounds embedded.
  const total = RATE * SECONDS;
  const expected = new Map<string, string>();
  const stop = await recordMainThread(page);
  const publishing = await publishAtRate(origin, publisherToken(project), total, RATE, (sent) => {
    const chunk = chunkIds[sent % chunkIds.length];
    const status = Math.floor(sent / chunkIds.length) % 2 === 0 ? "embedded" : "pending";
    expected.set(chunk, status);
    return { type: "entity.updated", entity: "chunk", id: chunk, projectId: project, data: { documentId: id, status } };
  });
  await expect
    .poll(() => eventsReceived(page, "chunk"), { timeout: 60_000 })
    .toBeGreaterThanOrEqual(receivedBefore + publishing.published);
  const measured = await stop();
  const received = (await eventsReceived(page, "chunk")) - receivedBefore;

  // Every chunk row ends with its last status: the count, then the whole list scrolled.
  const embedded = [...expected.values()].filter((status) => status === "embedded").length;
  await expect(count).toHaveText(`· ${embedded} of ${CHUNKS} embedded`);
  const seen = new Map<number, string>();
  await scrollThrough(page, page.getByTestId("chunks-scroller"), 10 * 44, async () => {
    const rows = await page.getByTestId("chunk-row").evaluateAll((elements) =>
      elements.map((element) => [Number(element.getAttribute("aria-rowindex")) - 2, element.getAttribute("data-status") ?? ""] as const),
    );
    for (const [position, status] of rows) seen.set(position, status);
  });
  const wrong = chunkIds.filter((chunk, position) => seen.get(position) !== expected.get(chunk));

  const report = {
    chunks: CHUNKS,
    rate: RATE,
    seconds: SECONDS,
    ...publishing,
    received,
    ...measured,
    mainThreadUsPerEvent: usPerEvent(measured.mainThreadMs, received),
    rendererUsPerEvent: usPerEvent(measured.rendererCpuMs, received),
    chunksChecked: seen.size,
    chunksWithWrongFinalStatus: wrong.length,
    timeToLiveMs: timeToLive,
  };
  console.log(`document page benchmark: ${JSON.stringify(report, null, 2)}`);
  expect(wrong).toEqual([]);
  expect(received).toBe(publishing.published);
});
