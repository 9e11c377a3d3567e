import { createHmac } from "node:crypto";
import { writeFileSync } from "node:fs";

import { type Page, expect, test } from "@playwright/test";

import { createAccount } from "../tests/fixtures/accounts";
import { DocumentsPage } from "../tests/fixtures/documents_page";

const DOCUMENTS = Number(process.env.BENCH_DOCUMENTS ?? "5000");
const RATE = Number(process.env.BENCH_RATE ?? "1000");
const SECONDS = Number(process.env.BENCH_SECONDS ?? "10");
// A column header to sort by before the burst ("Title": every event then changes a sort key).
const SORT = process.env.BENCH_SORT || undefined;

/** An HS256 token signed with the server's secret. */
function token(claims: Record<string, unknown>): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const unsigned = `${encode({ alg: "HS256", typ: "JWT" })}.${encode(claims)}`;
  const signature = createHmac("sha256", process.env.JWT_SECRET ?? "").update(unsigned).digest("base64url");
  return `${unsigned}.${signature}`;
}

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

/** Two animation frames: the windowed table has rendered what the last scroll asked for. */
async function nextFrames(page: Page): Promise<void> {
  await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
}

test("5,000 documents take 1,000 updates a second without long frames", async ({ page }) => {
  const profilePath = process.env.BENCH_PROFILE;
  const account = createAccount("Bench");
  const project = account.projects[0].id;
  const origin = test.info().project.use.baseURL ?? "";
  const headers = { "X-Project-Id": project };

  const documents = new DocumentsPage(page);
  await documents.logIn(account);
  const indices = Array.from({ length: DOCUMENTS }, (_, index) => index);
  await inParallel(indices, 8, async (index) => {
    const response = await page.request.post("/api/documents", {
      headers,
      data: { title: `bench-${index}`, content: `Benchmark document ${index}.` },
    });
    expect(response.status()).toBe(201);
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

  await page.evaluate(() => {
    const record = { longFrames: 0, longTasks: 0, frames: 0, worstFrame: 0, worstTask: 0, running: true };
    (window as unknown as { benchRecord: typeof record }).benchRecord = record;
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        record.longFrames += 1;
        record.worstFrame = Math.max(record.worstFrame, entry.duration);
      }
    }).observe({ type: "long-animation-frame", buffered: false });
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        record.longTasks += 1;
        record.worstTask = Math.max(record.worstTask, entry.duration);
      }
    }).observe({ type: "longtask", buffered: false });
    const frame = () => {
      record.frames += 1;
      if (record.running) requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Performance.enable");
  const metric = async () => {
    const { metrics } = await cdp.send("Performance.getMetrics");
    const value = (name: string) => metrics.find((entry) => entry.name === name)?.value ?? 0;
    return { taskDuration: value("TaskDuration"), timestamp: value("Timestamp") };
  };
  const receivedBefore = await page.evaluate(
    () => (window as unknown as { docpulseEventsReceived?: Record<string, number> }).docpulseEventsReceived?.document ?? 0,
  );

  // Publish RATE events a second for SECONDS seconds, one document after another, so that
  // no two events for a document fall in one coalescing window.
  const publisher = token({ sub: "bench", exp: Math.floor(Date.now() / 1000) + 3600, projects: [project], role: "publisher" });
  const expected = new Map<string, { title: string; embedded: number }>();
  let published = 0;
  let failed = 0;
  const inFlight = new Set<Promise<void>>();
  if (profilePath) {
    await cdp.send("Profiler.enable");
    await cdp.send("Profiler.start");
  }
  const before = await metric();
  const started = Date.now();
  const total = RATE * SECONDS;
  for (let sent = 0; sent < total; ) {
    const due = Math.min(total, Math.floor(((Date.now() - started) / 1000) * RATE));
    for (; sent < due; sent += 1) {
      const id = ids[sent % ids.length];
      const round = Math.floor(sent / ids.length);
      const data = { title: `bench-${id}-v${round}`, embeddedChunks: (sent % 97) + 1, chunks: 100, status: "embedding" };
      expected.set(id, { title: data.title, embedded: data.embeddedChunks });
      const request = fetch(`${origin}/api/events/publish`, {
        method: "POST",
        headers: { authorization: `Bearer ${publisher}`, "content-type": "application/json" },
        body: JSON.stringify({ type: "entity.updated", entity: "document", id, projectId: project, data }),
      }).then(
        (response) => {
          if (response.status === 202) published += 1;
          else failed += 1;
        },
        () => {
          failed += 1;
        },
      );
      inFlight.add(request);
      void request.finally(() => inFlight.delete(request));
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await Promise.all(inFlight);
  const publishSeconds = (Date.now() - started) / 1000;
  await expect
    .poll(
      () =>
        page.evaluate(
          () => (window as unknown as { docpulseEventsReceived?: Record<string, number> }).docpulseEventsReceived?.document ?? 0,
        ),
      { timeout: 60_000 },
    )
    .toBeGreaterThanOrEqual(receivedBefore + published);
  const after = await metric();
  if (profilePath) {
    const { profile } = await cdp.send("Profiler.stop");
    writeFileSync(profilePath, JSON.stringify(profile));
  }
  const record = await page.evaluate(() => {
    const record = (window as unknown as { benchRecord: { running: boolean } }).benchRecord;
    record.running = false;
    return record;
  });
  const received =
    (await page.evaluate(() => (window as unknown as { docpulseEventsReceived?: Record<string, number> }).docpulseEventsReceived?.document ?? 0)) -
    receivedBefore;

  // Every updated document ends with its last value: scroll through the whole table.
  const scroller = page.getByTestId("documents-scroller");
  const seen = new Map<string, { title: string; embedded: number }>();
  const height = await scroller.evaluate((element) => element.scrollHeight);
  for (let top = 0; top <= height; top += 30 * 52) {
    await scroller.evaluate((element, value) => {
      element.scrollTop = value;
    }, top);
    await nextFrames(page);
    const rows = await page.getByTestId("document-row").evaluateAll((elements) =>
      elements.map((element) => ({
        id: element.getAttribute("data-document-id") ?? "",
        title: element.querySelector(".title")?.textContent ?? "",
        embedded: Number(element.querySelector("[role=progressbar]")?.getAttribute("aria-valuenow")),
      })),
    );
    for (const row of rows) seen.set(row.id, { title: row.title, embedded: row.embedded });
  }
  const wrong = [...expected].filter(([id, value]) => {
    const shown = seen.get(id);
    return !shown || shown.title !== value.title || shown.embedded !== value.embedded;
  });

  const report = {
    documents: DOCUMENTS,
    sortedBy: SORT || "added (default)",
    rate: RATE,
    seconds: SECONDS,
    publishSeconds: Number(publishSeconds.toFixed(2)),
    published,
    failedPublishes: failed,
    received,
    mainThreadBusy: `${(((after.taskDuration - before.taskDuration) / (after.timestamp - before.timestamp)) * 100).toFixed(1)} %`,
    frames: record,
    documentsChecked: seen.size,
    documentsWithWrongFinalValue: wrong.length,
    timeToLiveMs: timeToLive,
    navigation,
  };
  console.log(`documents table benchmark: ${JSON.stringify(report, null, 2)}`);
  expect(wrong).toEqual([]);
  expect(received).toBe(published);
});
