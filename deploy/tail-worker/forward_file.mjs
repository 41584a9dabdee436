// Test and bench helper: forward the JSON array of events in argv[2] with index.js's batching, to argv[3].
// The token comes from TAILWATCH_INGEST_TOKEN; prints the statuses as JSON.
import { readFileSync } from "node:fs";
import { forward } from "./index.js";

const events = JSON.parse(readFileSync(process.argv[2], "utf8"));
const maxEvents = Number(process.argv[4] ?? 500);
const statuses = await forward(events, {
  url: process.argv[3], token: process.env.TAILWATCH_INGEST_TOKEN, maxEvents, concurrency: 3,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.min(ms, 200))),
});
console.log(JSON.stringify(statuses));
