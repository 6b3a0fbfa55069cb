// make-db.mjs <stateDir> <agentId>
//
// Has OpenClaw's own bundled code create <stateDir>/agents/<agentId>/agent/openclaw-agent.sqlite
// (schema 23) and write into it, exactly as its runtime does:
//   1. openOpenClawAgentDatabase      — create/migrate/register the per-agent DB
//   2. upsertSessionEntry             — session entry under agent:<agentId>:main
//   3. appendTranscriptEvent          — session header {"type":"session","version":4,...}
//   4. appendTranscriptMessage (x2)   — user + assistant "message" events; the assistant
//      message is built with OpenClaw's buildAssistantMessage/buildUsageWithNoCost and
//      carries ~8 KB of compressible text so OpenClaw stores it zstd-compressed.
// Prints a JSON summary on stdout. Run with Node >= 24.16 (node:sqlite, zlib zstd).
import path from "node:path";
import { randomUUID } from "node:crypto";
import { importDist, findExport } from "./ocdist.mjs";

const [stateDirArg, agentId] = process.argv.slice(2);
if (!stateDirArg || !agentId) {
  console.error("usage: make-db.mjs <stateDir> <agentId>");
  process.exit(2);
}
// OpenClaw resolves every path from OPENCLAW_STATE_DIR (set before any import runs code).
process.env.OPENCLAW_STATE_DIR = path.resolve(stateDirArg);

// Stable plugin-sdk entry points (real export names).
const store = await importDist("plugin-sdk/session-store-runtime.js");
const sqlite = await importDist("plugin-sdk/sqlite-runtime.js");
// Internal functions, located in their content-hashed chunks.
const appendTranscriptEvent = await findExport("appendTranscriptEvent");
const appendTranscriptMessage = await findExport("appendTranscriptMessage");
const createSessionTranscriptHeader = await findExport("createSessionTranscriptHeader");
const buildAssistantMessage = await findExport("buildAssistantMessage", "stream-message-shared");
const buildUsageWithNoCost = await findExport("buildUsageWithNoCost", "stream-message-shared");

// 1. Create the DB the way the runtime does (schema, pragmas, registry, lease).
const database = sqlite.openOpenClawAgentDatabase({ agentId });

// 2. The session entry. upsertSessionEntry -> patchSessionEntryCore -> writeSessionEntry.
const sessionKey = `agent:${agentId}:main`;
const sessionId = randomUUID();
const t0 = Date.now();
const provider = "anthropic", model = "claude-sonnet-4-5";
await store.upsertSessionEntry({
  agentId, sessionKey,
  entry: { sessionId, updatedAt: t0, sessionStartedAt: t0, chatType: "direct", modelProvider: provider, model },
});

// 3. Session header (v4). appendTranscriptMessage would also write it on first append
//    (ensureTranscriptHeader); writing it explicitly goes through appendTranscriptEvent.
const scope = { agentId, sessionKey, sessionId };
const cwd = process.cwd();
await appendTranscriptEvent(scope, createSessionTranscriptHeader({ sessionId, cwd, timestamp: new Date(t0).toISOString() }));

// 4. Messages. appendTranscriptMessage wraps them as
//    {type:"message", id, parentId, timestamp, message} (ids/parents assigned by OpenClaw).
const user = { role: "user", content: [{ type: "text", text: "Write me a long story about sqlite." }], timestamp: t0 + 1 };
await appendTranscriptMessage(scope, { message: user, cwd, now: t0 + 1 });

// ~8 KB of text: pseudo-random words from a small vocabulary (no repeated block, but zstd-friendly).
const words = "the store keeps every session row in one table while windows own transcript generations and readers decode frames".split(" ");
let seed = 7, text = "";
while (text.length < 8192) { seed = (seed * 1103515245 + 12345) % 2 ** 31; text += words[seed % words.length] + (seed % 13 ? " " : ".\n"); }
const assistant = buildAssistantMessage({
  model: { api: "anthropic-messages", provider, id: model },
  content: [{ type: "text", text }],
  stopReason: "stop",
  usage: buildUsageWithNoCost({ input: 1200, output: 2100 }),
  timestamp: t0 + 2,
});
await appendTranscriptMessage(scope, { message: assistant, cwd, now: t0 + 2 });

// Summary (the counts are a plain read through OpenClaw's own connection).
const count = (sql) => database.db.prepare(sql).get(sessionId).n;
console.log(JSON.stringify({
  dbPath: database.path,
  sessionKey, sessionId,
  keys: store.listSessionEntries({ agentId }).map((e) => e.sessionKey),
  transcriptRows: count("select count(*) n from transcript_events where session_id = ?"),
  zstdRows: count("select count(*) n from transcript_events where session_id = ? and event_zstd is not null"),
}, null, 2));
