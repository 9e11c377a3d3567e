// What both benchmarks measure and how they publish: the main thread's busy share and its
// long frames over the burst (Chromium's own counters), and events published at a steady rate
// through POST /api/events/publish with a publisher token signed by the server's secret.
import { writeFileSync } from "node:fs";
import { Agent, request } from "node:http";

import type { Locator, Page } from "@playwright/test";

import { signedToken } from "../tests/fixtures/publisher";

/** An HS256 token signed with the server's secret. */
export function token(claims: Record<string, unknown>): string {
  return signedToken(claims, process.env.JWT_SECRET ?? "");
}

/** A publisher token for `project`, valid an hour. */
export function publisherToken(project: string): string {
  return token({ sub: "bench", exp: Math.floor(Date.now() / 1000) + 3600, projects: [project], role: "publisher" });
}

/** How many events of `entity` the page's stream client has dispatched. */
export function eventsReceived(page: Page, entity: string): Promise<number> {
  return page.evaluate(
    (kind) => (window as unknown as { docpulseEventsReceived?: Record<string, number> }).docpulseEventsReceived?.[kind] ?? 0,
    entity,
  );
}

/** Two animation frames: a windowed list has rendered what the last scroll asked for. */
async function nextFrames(page: Page): Promise<void> {
  await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
}

/**
 * Scrolls the windowed list in `scroller` from top to bottom, `step` pixels at a time, and
 * calls `collect` once the rows of each position are rendered.
 */
export async function scrollThrough(page: Page, scroller: Locator, step: number, collect: () => Promise<void>): Promise<void> {
  const height = await scroller.evaluate((element) => element.scrollHeight);
  for (let top = 0; top <= height; top += step) {
    await scroller.evaluate((element, value) => {
      element.scrollTop = value;
    }, top);
    await nextFrames(page);
    await collect();
  }
}

export interface FrameRecord {
  longFrames: number;
  longTasks: number;
  worstFrame: number;
  worstTask: number;
  /** Style recalculations and layouts: the renders the page did (CDP counters). */
  styleRecalcs: number;
  layouts: number;
}

/** CPU seconds of the browser's renderer processes so far: every thread of the page's
 * process (main, workers, compositor, network reads), where the main thread's busy time
 * counts only the first. */
async function rendererCpuSeconds(page: Page): Promise<number> {
  const browser = page.context().browser();
  if (!browser) return 0;
  const session = await browser.newBrowserCDPSession();
  const { processInfo } = (await session.send("SystemInfo.getProcessInfo")) as {
    processInfo: { type: string; cpuTime: number }[];
  };
  await session.detach();
  return processInfo.filter((process) => process.type === "renderer").reduce((sum, process) => sum + process.cpuTime, 0);
}

/**
 * Starts recording the page's main thread: busy time (CDP `TaskDuration`), long animation
 * frames, long tasks, style recalculations and layouts; the busy time also in milliseconds,
 * to divide by the events; and the renderer's CPU time over the same span, which counts
 * work moved off the main thread too. `BENCH_PROFILE` names a file for a CPU profile of the
 * same span, `BENCH_TRACE` one for a Chromium trace of it (its tasks, by thread, with what
 * posted them). The returned function stops and reports.
 */
export async function recordMainThread(
  page: Page,
): Promise<() => Promise<{ mainThreadBusy: string; mainThreadMs: number; rendererCpuMs: number; frames: FrameRecord }>> {
  const profilePath = process.env.BENCH_PROFILE;
  const tracePath = process.env.BENCH_TRACE;
  const browser = page.context().browser();
  await page.evaluate(() => {
    const record = { longFrames: 0, longTasks: 0, worstFrame: 0, worstTask: 0 };
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
    // No animation-frame loop to count frames: it would make the page render 60 frames a
    // second that it would not otherwise, and measure them (2.6 points of busy here, about
    // 26 µs per event at 1,000 a second). The CDP counters below count the renders instead.
  });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Performance.enable");
  const metric = async () => {
    const { metrics } = await cdp.send("Performance.getMetrics");
    const value = (name: string) => metrics.find((entry) => entry.name === name)?.value ?? 0;
    return {
      taskDuration: value("TaskDuration"),
      timestamp: value("Timestamp"),
      styleRecalcs: value("RecalcStyleCount"),
      layouts: value("LayoutCount"),
    };
  };
  if (profilePath) {
    await cdp.send("Profiler.enable");
    // A sample every 100 µs rather than Chromium's 1 ms: at a few tenths of a percent busy,
    // 1 ms samples leave a function of a few microseconds per event with a handful of them.
    await cdp.send("Profiler.setSamplingInterval", { interval: 100 });
    await cdp.send("Profiler.start");
  }
  if (tracePath && browser) {
    const categories = ["toplevel", "devtools.timeline", "disabled-by-default-devtools.timeline", "mojom", "v8"];
    await browser.startTracing(page, { path: tracePath, categories });
  }
  const before = await metric();
  const rendererBefore = await rendererCpuSeconds(page);
  return async () => {
    const after = await metric();
    const rendererAfter = await rendererCpuSeconds(page);
    if (tracePath && browser) await browser.stopTracing();
    if (profilePath) {
      const { profile } = await cdp.send("Profiler.stop");
      writeFileSync(profilePath, JSON.stringify(profile));
    }
    const observed = await page.evaluate(
      () => (window as unknown as { benchRecord: Omit<FrameRecord, "styleRecalcs" | "layouts"> }).benchRecord,
    );
    const frames: FrameRecord = {
      ...observed,
      styleRecalcs: after.styleRecalcs - before.styleRecalcs,
      layouts: after.layouts - before.layouts,
    };
    const busySeconds = after.taskDuration - before.taskDuration;
    const busy = busySeconds / (after.timestamp - before.timestamp);
    return {
      mainThreadBusy: `${(busy * 100).toFixed(1)} %`,
      mainThreadMs: Math.round(busySeconds * 1000),
      rendererCpuMs: Math.round((rendererAfter - rendererBefore) * 1000),
      frames,
    };
  };
}

/** Microseconds per event: `milliseconds` that `recordMainThread` measured over the
 * `received` events. */
export function usPerEvent(milliseconds: number, received: number): number {
  return Math.round((milliseconds * 1000) / Math.max(received, 1));
}

/**
 * Requests `publishAtRate` keeps in flight at most, each on a kept-alive connection of its
 * own: without a bound a server slower than the rate for a moment gets thousands of them (at
 * 5,000 events a second it ran out of file descriptors). Past the bound the publisher falls
 * behind the rate rather than open more; `publishedPerSecond` shows it.
 */
const MAX_PUBLISHES_IN_FLIGHT = 64;

/** `POST` of `body` to `url` on `agent`'s connections; resolves to the status. */
function post(agent: Agent, url: URL, headers: Record<string, string>, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const sending = request(
      url,
      { method: "POST", agent, headers: { ...headers, "content-length": String(Buffer.byteLength(body)) } },
      (response) => {
        response.resume();
        response.on("end", () => resolve(response.statusCode ?? 0));
        response.on("error", reject);
      },
    );
    sending.on("error", reject);
    sending.end(body);
  });
}

/**
 * Publishes `total` events at `rate` a second as `publisher`; `event(n)` is the n-th
 * event's body. Resolves once every request is answered. Node's `http` rather than `fetch`:
 * here `fetch` could not publish more than about 2,600 events a second.
 */
export async function publishAtRate(
  origin: string,
  publisher: string,
  total: number,
  rate: number,
  event: (sent: number) => Record<string, unknown>,
): Promise<{ published: number; failedPublishes: number; publishSeconds: number; publishedPerSecond: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: MAX_PUBLISHES_IN_FLIGHT });
  const url = new URL("/api/events/publish", origin);
  const headers = { authorization: `Bearer ${publisher}`, "content-type": "application/json" };
  let published = 0;
  let failed = 0;
  const inFlight = new Set<Promise<void>>();
  const started = Date.now();
  for (let sent = 0; sent < total; ) {
    const due = Math.min(total, Math.floor(((Date.now() - started) / 1000) * rate));
    for (; sent < due; sent += 1) {
      if (inFlight.size >= MAX_PUBLISHES_IN_FLIGHT) await Promise.race(inFlight);
      const sending = post(agent, url, headers, JSON.stringify(event(sent))).then(
        (status) => {
          if (status === 202) published += 1;
          else failed += 1;
        },
        () => {
          failed += 1;
        },
      );
      inFlight.add(sending);
      void sending.finally(() => inFlight.delete(sending));
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await Promise.all(inFlight);
  agent.destroy();
  const seconds = (Date.now() - started) / 1000;
  return {
    published,
    failedPublishes: failed,
    publishSeconds: Number(seconds.toFixed(2)),
    publishedPerSecond: Math.round(published / seconds),
  };
}
