// read-db.mjs <stateDir> <agentId> [--no-reconcile]
//
// Opens <stateDir>/agents/<agentId>/agent/openclaw-agent.sqlite through OpenClaw's own
// bundled code and prints JSON:
//   entries:  { sessionKey: entry }  — listSessionEntries (OpenClaw's session listing)
//   transcripts: { sessionKey: { sessionId, events, visible } }
//     events  — loadTranscriptEventsSync: every raw event, decoded (zstd rows inflated)
//     visible — readSessionTranscriptVisibleMessageDelta: the active-branch message page,
//               which is served from OpenClaw's derived projection
//               (session_transcript_index_state / _active_events)
//   reconcile / certify — what the startup maintenance steps below did.
// Before reading it runs what Gateway startup runs (runSessionStartupMigration):
//   certifySessionCanonicalValidationPending — validates session_canonical_validation_pending
//   reconcileSessionTranscriptIndexes        — rebuilds missing/stale transcript projections
// so rows added by another writer are settled first. --no-reconcile skips both.
// Run with Node >= 24.16.
import path from "node:path";
import { importDist, findExport } from "./ocdist.mjs";

const args = process.argv.slice(2);
const maintain = !args.includes("--no-reconcile");
const [stateDirArg, agentId] = args.filter((a) => !a.startsWith("--"));
if (!stateDirArg || !agentId) {
  console.error("usage: read-db.mjs <stateDir> <agentId> [--no-reconcile]");
  process.exit(2);
}
process.env.OPENCLAW_STATE_DIR = path.resolve(stateDirArg);

const store = await importDist("plugin-sdk/session-store-runtime.js");
const transcripts = await importDist("plugin-sdk/session-transcript-runtime.js");
const sqlite = await importDist("plugin-sdk/sqlite-runtime.js");
const out = {};

// Open (and, on a writable open, settle entry_valid=0 rows / repair indexes) as the runtime does.
const database = sqlite.openOpenClawAgentDatabase({ agentId });
out.dbPath = database.path;

if (maintain) {
  // Same calls and order as Gateway startup (startup-migration: runSessionStartupMigration).
  const options = { agentId, path: database.path };
  const certify = await findExport("certifySessionCanonicalValidationPending");
  const withWorker = await findExport("withSqliteCanonicalValidationWorker");
  const pending = () => database.db.prepare("select count(*) n from session_canonical_validation_pending").get().n;
  const before = pending();
  await withWorker((w) => certify(options, w));
  out.certify = { pendingBefore: before, pendingAfter: pending() };
  // Stable (unhashed) dist entry: startup imports it by this path too.
  const { reconcileSessionTranscriptIndexes } = await importDist("config/sessions/session-transcript-reconcile.js");
  out.reconcile = await reconcileSessionTranscriptIndexes(options);
}

// Session listing: rows failing the validity rule are skipped here (see NOTES.md).
const entries = store.listSessionEntries({ agentId });
out.entries = Object.fromEntries(entries.map(({ sessionKey, entry }) => [sessionKey, entry]));

out.transcripts = {};
for (const { sessionKey, entry } of entries) {
  const scope = { agentId, sessionKey, sessionId: entry.sessionId };
  const events = store.loadTranscriptEventsSync(scope);
  const visible = await transcripts.readSessionTranscriptVisibleMessageDelta({ ...scope, maxMessages: 100 });
  out.transcripts[sessionKey] = { sessionId: entry.sessionId, events, visible };
}
console.log(JSON.stringify(out, null, 2));
