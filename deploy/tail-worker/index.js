// A Tail Worker forwarding every TraceItem of its producer Workers to `tailwatch ingest --listen`.
//
// Each `tail(events)` call is cut into batches (at most MAX_EVENTS events and about MAX_BYTES of JSON each), every
// batch is POSTed gzipped to TAILWATCH_URL with `Authorization: Bearer TAILWATCH_INGEST_TOKEN`, and retried with
// the same body on 503/429/5xx or a network error (the listener drops a body it already published), waiting what
// `Retry-After` says, at most MAX_ATTEMPTS times. Bind it to producers with `tail_consumers` in their wrangler.toml.

export const MAX_EVENTS = 500;
export const MAX_BYTES = 4 * 1024 * 1024;
export const MAX_ATTEMPTS = 4;
export const MAX_WAIT_MS = 10_000;

// Batches of JSON texts: an event's text is measured once; one event over MAX_BYTES goes alone (the listener says
// 413 if it is over its own limit).
export function batches(events, maxEvents = MAX_EVENTS, maxBytes = MAX_BYTES) {
  const out = [];
  let current = [];
  let size = 2;
  for (const event of events) {
    const text = JSON.stringify(event);
    if (current.length > 0 && (current.length >= maxEvents || size + text.length + 1 > maxBytes)) {
      out.push("[" + current.join(",") + "]");
      current = [];
      size = 2;
    }
    current.push(text);
    size += text.length + 1;
  }
  if (current.length > 0) out.push("[" + current.join(",") + "]");
  return out;
}

export async function gzip(text) {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function retryable(status) {
  return status === 429 || status >= 500;
}

// POST one batch; returns the final HTTP status (0: the network failed every time).
export async function send(body, { url, token, fetchFn = fetch, sleep = defaultSleep, maxAttempts = MAX_ATTEMPTS }) {
  const compressed = await gzip(body);
  let status = 0;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    let retryAfterMs = 1000 * attempt;
    try {
      const response = await fetchFn(url, {
        method: "POST",
        headers: { "Authorization": `Bearer ${token}`, "Content-Type": "application/json",
                   "Content-Encoding": "gzip" },
        body: compressed,
      });
      status = response.status;
      await response.arrayBuffer();
      if (!retryable(status)) return status;
      const header = Number(response.headers.get("Retry-After"));
      if (Number.isFinite(header) && header > 0) retryAfterMs = header * 1000;
    } catch (error) {
      status = 0;
    }
    if (attempt < maxAttempts) await sleep(Math.min(retryAfterMs, MAX_WAIT_MS));
  }
  return status;
}

function defaultSleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Every batch of `events`, `concurrency` at a time; the statuses in batch order.
export async function forward(events, options) {
  const bodies = batches(events, options.maxEvents, options.maxBytes);
  const statuses = new Array(bodies.length);
  let next = 0;
  const concurrency = options.concurrency ?? 4;
  async function worker() {
    while (next < bodies.length) {
      const index = next++;
      statuses[index] = await send(bodies[index], options);
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, bodies.length) }, worker));
  return statuses;
}

export default {
  async tail(events, env, ctx) {
    const options = { url: env.TAILWATCH_URL, token: env.TAILWATCH_INGEST_TOKEN };
    ctx.waitUntil(forward(events, options).then((statuses) => {
      const failed = statuses.filter((status) => status !== 200).length;
      if (failed > 0) console.error(`tailwatch: ${failed} of ${statuses.length} batches not accepted`, statuses);
    }));
  },
};
