// The event stream's network reads, in a dedicated worker (started by stream_worker.rs), so
// that the page's main thread pays one task per POST_INTERVAL_MS for the stream rather than
// one per network read.
//
// The page posts one message, { url, headers }, and ends the stream by terminating the
// worker. The worker answers, in this order:
//   { status, retryAfter }  the answer's status and Retry-After header;
//   an ArrayBuffer          body bytes (transferred), at most one post per POST_INTERVAL_MS,
//                           the first at once; the bytes alone, the cheapest message to read;
//   null                    the request failed or the body ended.
// Bound: the worker holds at most the bytes of one interval, and the server's slow-client
// limit bounds what an interval brings.
"use strict";

/**
 * One post per two frames of a 60 Hz display, at most. A post costs the page's main thread
 * a task of its own whatever it carries: under a burst of 1,000 events a second, posting
 * every 33 ms rather than every 16 ms took the main thread's time per event from about 40 µs
 * to about 30 (README, browser benchmarks). The first read after a quiet spell goes at once.
 * The server writes a flooded stream at most as often (`PACE`, src/stream/pacing.rs).
 */
const POST_INTERVAL_MS = 33;

/** Chunks read since the last post. */
let held = [];
let lastPost = -Infinity;
let timer;

function postHeld() {
  timer = undefined;
  if (held.length === 0) return;
  let size = 0;
  for (const chunk of held) size += chunk.byteLength;
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of held) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  held = [];
  lastPost = performance.now();
  self.postMessage(bytes.buffer, [bytes.buffer]);
}

function hold(chunk) {
  held.push(chunk);
  if (timer !== undefined) return;
  const wait = lastPost + POST_INTERVAL_MS - performance.now();
  if (wait <= 0) postHeld();
  else timer = setTimeout(postHeld, wait);
}

async function stream(url, headers) {
  let response;
  try {
    response = await fetch(url, { headers, credentials: "same-origin", cache: "no-store" });
  } catch {
    return;
  }
  self.postMessage({ status: response.status, retryAfter: response.headers.get("retry-after") });
  if (!response.ok || response.body === null) return;
  const reader = response.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      hold(value);
    }
  } catch {
    // The network failed: what was read still goes, then the page retries.
  }
  clearTimeout(timer);
  postHeld();
}

self.onmessage = async ({ data }) => {
  await stream(data.url, data.headers);
  self.postMessage(null);
};
