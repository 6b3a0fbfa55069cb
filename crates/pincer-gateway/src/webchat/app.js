// Pincer's web chat: OpenClaw's gateway protocol (v4) over the gateway's
// own WebSocket, no dependencies, no network beyond the gateway.
"use strict";

const $ = (id) => document.getElementById(id);
const COMMANDS = [
  ["/new", "start a new conversation in this session"],
  ["/reset", "forget the conversation so far"],
  ["/model", "show or set the model (/model <ref|alias>)"],
  ["/think", "thinking level (/think off|low|medium|high)"],
  ["/compact", "summarise the conversation so far"],
  ["/status", "model, context used, window"],
  ["/stop", "stop the answer under way"],
  ["/help", "the commands"],
];

const state = {
  ws: null, token: "", connected: false, nextId: 1, pending: new Map(),
  session: localStorage.getItem("pincer.session") || "main",
  runs: new Map(), // runId -> {el, text, reasoning}
  backoff: 800, labels: JSON.parse(localStorage.getItem("pincer.labels") || "{}"),
};

// ---------- Markdown (escaped first: model text never becomes HTML) ----------
function esc(s) {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}
function inline(s) {
  return s
    .replace(/`([^`]+)`/g, (_, c) => `<code>${c}</code>`)
    .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
    .replace(/(^|[^*])\*([^*\n]+)\*/g, "$1<em>$2</em>")
    .replace(/\[([^\]]+)\]\((https?:\/\/[^\s)]+)\)/g,
      '<a href="$2" target="_blank" rel="noopener noreferrer">$1</a>');
}
function markdown(src) {
  const out = [];
  const parts = src.split(/```/);
  parts.forEach((part, i) => {
    if (i % 2 === 1) {
      const nl = part.indexOf("\n");
      const lang = nl > 0 ? part.slice(0, nl).trim() : "";
      const code = nl >= 0 ? part.slice(nl + 1) : part;
      out.push(`<pre><code data-lang="${esc(lang)}">${esc(code.replace(/\n$/, ""))}</code></pre>`);
      return;
    }
    for (const block of esc(part).split(/\n{2,}/)) {
      if (!block.trim()) continue;
      const lines = block.split("\n");
      if (lines.every((l) => /^\s*([-*]|\d+\.)\s+/.test(l))) {
        const ordered = /^\s*\d+\./.test(lines[0]);
        const items = lines.map((l) => `<li>${inline(l.replace(/^\s*([-*]|\d+\.)\s+/, ""))}</li>`);
        out.push(ordered ? `<ol>${items.join("")}</ol>` : `<ul>${items.join("")}</ul>`);
      } else if (/^#{1,4}\s/.test(block)) {
        out.push(`<p><strong>${inline(block.replace(/^#{1,4}\s/, ""))}</strong></p>`);
      } else {
        out.push(`<p>${inline(block).replace(/\n/g, "<br>")}</p>`);
      }
    }
  });
  return out.join("");
}

// ---------- The protocol ----------
function request(method, params) {
  return new Promise((resolve, reject) => {
    if (!state.ws || state.ws.readyState !== WebSocket.OPEN) {
      reject(new Error("not connected"));
      return;
    }
    const id = `${state.nextId++}:web`;
    state.pending.set(id, { resolve, reject, method });
    state.ws.send(JSON.stringify({ type: "req", id, method, params: params || {} }));
  });
}

function connect() {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/`;
  const ws = new WebSocket(url);
  state.ws = ws;
  setStatus("connecting…");
  ws.onmessage = (m) => {
    let f;
    try { f = JSON.parse(m.data); } catch { return; }
    if (f.type === "event" && f.event === "connect.challenge") {
      ws.send(JSON.stringify({ type: "req", id: "connect", method: "connect", params: {
        minProtocol: 4, maxProtocol: 4,
        client: { id: "webchat", version: "pincer", platform: navigator.platform || "web", mode: "webchat" },
        role: "operator", scopes: ["operator.read", "operator.write", "operator.admin"],
        caps: ["tool-events"], auth: { token: state.token },
      } }));
      return;
    }
    if (f.type === "res" && f.id === "connect") {
      if (!f.ok) {
        const message = f.error && f.error.message || "refused";
        // Only a refused token is forgotten (not a lockout or an outage).
        if (message.startsWith("unauthorized")) localStorage.removeItem("pincer.token");
        loginError(message);
        return;
      }
      localStorage.setItem("pincer.token", state.token);
      const defaults = (f.payload.snapshot || {}).sessionDefaults || {};
      state.agent = defaults.defaultAgentId || "main";
      state.connected = true;
      state.backoff = 800;
      setStatus("connected");
      showApp();
      refresh();
      return;
    }
    if (f.type === "res") {
      const p = state.pending.get(f.id);
      if (!p) return;
      // `agent` answers twice; everything else once.
      state.pending.delete(f.id);
      if (f.ok) p.resolve(f.payload); else p.reject(new Error(f.error ? f.error.message : "failed"));
      return;
    }
    if (f.type === "event") onEvent(f.event, f.payload || {});
  };
  ws.onclose = (e) => {
    state.connected = false;
    for (const p of state.pending.values()) p.reject(new Error("disconnected"));
    state.pending.clear();
    if (e.code === 1008 && e.reason && e.reason.startsWith("unauthorized")) {
      loginError(e.reason);
      return;
    }
    setStatus(`reconnecting in ${Math.round(state.backoff / 100) / 10} s…`);
    setTimeout(connect, state.backoff);
    state.backoff = Math.min(state.backoff * 1.7, 15000);
  };
}

function canonical(key) {
  return key.startsWith("agent:") ? key : `agent:${state.agent || "main"}:${key}`;
}
function short(key) {
  return key.replace(new RegExp(`^agent:${state.agent || "main"}:`), "");
}

function onEvent(event, p) {
  if (event === "sessions.changed") { loadSessions(); return; }
  if (!p.sessionKey || canonical(p.sessionKey) !== canonical(state.session)) return;
  if (event === "chat") {
    const run = runFor(p.runId);
    if (p.state === "delta" && p.message) {
      run.text = p.message.content.map((c) => c.text || "").join("");
      render(run);
    } else if (p.state === "final") {
      if (p.message) run.text = p.message.content.map((c) => c.text || "").join("");
      run.meta = meta(p);
      render(run);
      finish(p.runId);
    } else if (p.state === "error") {
      run.error = p.errorMessage || "error";
      render(run);
      finish(p.runId);
    } else if (p.state === "aborted") {
      run.meta = "stopped";
      render(run);
      finish(p.runId);
    }
  } else if (event === "agent") {
    const run = runFor(p.runId);
    const d = p.data || {};
    if (p.stream === "thinking") { run.reasoning += d.delta || ""; render(run); }
    else if (p.stream === "tool") { run.tools.set(d.toolCallId, d); render(run); }
    else if (p.stream === "note") { run.notes.push(d.text); render(run); }
    else if (p.stream === "lifecycle" && d.phase === "model") { run.model = `${d.provider}/${d.model}`; }
  }
}

function meta(p) {
  const parts = [];
  if (p.model) parts.push(p.model);
  if (p.usage) {
    parts.push(`${p.usage.input} in · ${p.usage.output} out`);
    parts.push(`$${Number(p.usage.cost || 0).toFixed(6)}`);
  }
  if (p.stopReason && p.stopReason !== "stop") parts.push(p.stopReason);
  return parts.join(" · ");
}

function runFor(runId) {
  let run = state.runs.get(runId);
  if (!run) {
    const el = document.createElement("div");
    el.className = "msg assistant";
    el.dataset.run = runId;
    $("messages").appendChild(el);
    run = { el, text: "", reasoning: "", tools: new Map(), notes: [], meta: "", error: "" };
    state.runs.set(runId, run);
  }
  return run;
}

function render(run) {
  const html = [];
  for (const n of run.notes) html.push(`<div class="meta">${esc(n)}</div>`);
  if (run.reasoning) {
    html.push(`<details class="reasoning"><summary>Reasoning</summary>${markdown(run.reasoning)}</details>`);
  }
  for (const t of run.tools.values()) {
    const failed = t.isError ? " failed" : "";
    html.push(`<div class="tool${failed}"><span class="name">🔧 ${esc(t.name || "tool")}</span>` +
      `<pre><code>${esc(String(t.args || ""))}</code></pre>` +
      (t.result != null ? `<details><summary>result</summary><pre><code>${esc(String(t.result))}</code></pre></details>` : "") +
      `</div>`);
  }
  html.push(`<div class="body">${markdown(run.text)}</div>`);
  if (run.error) html.push(`<div class="error">${esc(run.error)}</div>`);
  if (run.meta) html.push(`<div class="meta">${esc(run.meta)}</div>`);
  run.el.innerHTML = html.join("");
  scroll();
}

function finish(runId) {
  state.runs.delete(runId);
  if (state.active === runId) state.active = null;
  $("stop").hidden = !state.active;
  $("send").hidden = !!state.active;
}

function scroll() {
  const m = $("messages");
  m.scrollTop = m.scrollHeight;
}

function addMessage(role, text, metaText) {
  const el = document.createElement("div");
  el.className = `msg ${role}`;
  el.innerHTML = (role === "user" ? `<div class="body">${esc(text).replace(/\n/g, "<br>")}</div>` : `<div class="body">${markdown(text)}</div>`) +
    (metaText ? `<div class="meta">${esc(metaText)}</div>` : "");
  $("messages").appendChild(el);
  scroll();
}

// ---------- Sessions, models, history ----------
async function refresh() {
  await Promise.all([loadSessions(), loadModels(), loadHistory()]);
}

async function loadSessions() {
  let list = [];
  try { list = (await request("sessions.list")).sessions || []; } catch { return; }
  const keys = list.map((s) => s.key);
  if (!keys.includes(canonical(state.session))) keys.unshift(canonical(state.session));
  const ul = $("sessions");
  ul.innerHTML = "";
  for (const key of keys) {
    const name = short(key);
    const li = document.createElement("li");
    if (canonical(state.session) === key) li.className = "active";
    const open = document.createElement("button");
    open.className = "open";
    open.textContent = state.labels[key] || name;
    open.onclick = () => switchSession(name);
    const rename = document.createElement("button");
    rename.className = "small";
    rename.title = "Rename";
    rename.textContent = "✎";
    rename.onclick = () => {
      const label = prompt("Name for this session", state.labels[key] || name);
      if (label) { state.labels[key] = label; localStorage.setItem("pincer.labels", JSON.stringify(state.labels)); loadSessions(); }
    };
    li.append(open, rename);
    if (name !== "main") {
      const del = document.createElement("button");
      del.className = "small";
      del.title = "Delete";
      del.textContent = "✕";
      del.onclick = async () => {
        if (!confirm(`Delete session ${state.labels[key] || name}?`)) return;
        try { await request("sessions.delete", { key }); } catch (e) { note(e.message); }
        if (canonical(state.session) === key) switchSession("main");
        loadSessions();
      };
      li.append(del);
    }
    ul.appendChild(li);
  }
  $("title").textContent = state.labels[canonical(state.session)] || state.session;
}

async function loadModels() {
  let models = [];
  try { models = (await request("models.list")).models || []; } catch { return; }
  const sel = $("model");
  sel.innerHTML = "";
  for (const m of models) {
    const opt = document.createElement("option");
    opt.value = `${m.provider}/${m.id}`;
    opt.textContent = m.alias ? `${m.alias} (${m.provider}/${m.id})` : `${m.provider}/${m.id}`;
    sel.appendChild(opt);
  }
  const chosen = localStorage.getItem(`pincer.model.${canonical(state.session)}`);
  if (chosen) sel.value = chosen;
}

async function loadHistory() {
  $("messages").innerHTML = "";
  state.runs.clear();
  let h;
  try { h = await request("chat.history", { sessionKey: state.session, limit: 200 }); } catch { return; }
  for (const m of h.messages || []) {
    if (m.role === "user") addMessage("user", typeof m.content === "string" ? m.content : "");
    else if (m.role === "assistant") {
      const text = (m.content || []).filter((c) => c.type === "text").map((c) => c.text).join("");
      if (text) addMessage("assistant", text, m.provider ? `${m.provider}/${m.model}` : "");
    }
  }
}

function switchSession(short) {
  state.session = short;
  localStorage.setItem("pincer.session", short);
  $("sidebar").classList.remove("open");
  loadSessions();
  loadModels();
  loadHistory();
  $("input").focus();
}

function note(text) {
  const el = document.createElement("div");
  el.className = "msg note";
  el.textContent = text;
  $("messages").appendChild(el);
  scroll();
}

// ---------- Sending ----------
async function send(text) {
  text = text.trim();
  if (!text) return;
  if (text === "/stop") { stop(); return; }
  addMessage("user", text);
  const key = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
  state.active = key;
  runFor(key);
  $("stop").hidden = false;
  $("send").hidden = true;
  try {
    const ack = await request("chat.send", { sessionKey: state.session, message: text, idempotencyKey: key });
    if (ack.status === "error") { runFor(key).error = ack.summary; render(runFor(key)); finish(key); }
  } catch (e) {
    const run = runFor(key);
    run.error = e.message;
    render(run);
    finish(key);
  }
}

async function stop() {
  try { await request("chat.abort", { sessionKey: state.session }); } catch (e) { note(e.message); }
}

async function patch(fields) {
  try {
    const r = await request("sessions.patch", Object.assign({ key: state.session }, fields));
    if (r && r.message) note(r.message);
  } catch (e) { note(e.message); }
}

// ---------- The page ----------
function setStatus(s) { $("status").textContent = s; }
function showApp() { $("login").hidden = true; $("app").hidden = false; $("input").focus(); }
function loginError(msg) {
  $("app").hidden = true;
  $("login").hidden = false;
  // A first visit without a token is not an error: the token is asked for.
  $("login-error").textContent = state.token ? msg : "";
  $("token").focus();
  if (state.ws) { state.ws.onclose = null; state.ws.close(); }
}

function suggestions() {
  const v = $("input").value;
  const box = $("suggest");
  if (!v.startsWith("/") || v.includes(" ")) { box.hidden = true; return []; }
  const hits = COMMANDS.filter(([c]) => c.startsWith(v.toLowerCase()));
  box.innerHTML = "";
  hits.forEach(([c, help], i) => {
    const li = document.createElement("li");
    li.textContent = `${c} — ${help}`;
    if (i === 0) li.className = "sel";
    li.onclick = () => { $("input").value = `${c} `; box.hidden = true; $("input").focus(); };
    box.appendChild(li);
  });
  box.hidden = hits.length === 0;
  return hits;
}

function applyTheme(t) {
  if (t) document.documentElement.dataset.theme = t; else delete document.documentElement.dataset.theme;
}

window.addEventListener("DOMContentLoaded", () => {
  applyTheme(localStorage.getItem("pincer.theme"));
  const fromUrl = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromUrl) { localStorage.setItem("pincer.token", fromUrl); history.replaceState(null, "", location.pathname); }
  state.token = localStorage.getItem("pincer.token") || "";
  $("login-form").onsubmit = (e) => {
    e.preventDefault();
    state.token = $("token").value.trim();
    $("login-error").textContent = "";
    connect();
  };
  $("composer").onsubmit = (e) => { e.preventDefault(); const t = $("input").value; $("input").value = ""; suggestions(); send(t); };
  $("input").addEventListener("input", suggestions);
  $("input").addEventListener("keydown", (e) => {
    if (e.key === "Tab" && !$("suggest").hidden) {
      e.preventDefault();
      const hits = suggestions();
      if (hits.length) { $("input").value = `${hits[0][0]} `; suggestions(); }
    } else if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      $("composer").requestSubmit();
    }
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && state.active) stop();
    if (e.altKey && (e.key === "n" || e.key === "N")) { e.preventDefault(); $("new-session").click(); }
  });
  $("stop").onclick = stop;
  $("new-session").onclick = () => switchSession(`web-${new Date().toISOString().replace(/[-:.TZ]/g, "").slice(0, 14)}`);
  $("menu").onclick = () => $("sidebar").classList.toggle("open");
  $("theme").onclick = () => {
    const dark = getComputedStyle(document.documentElement).colorScheme === "dark";
    const t = dark ? "light" : "dark";
    localStorage.setItem("pincer.theme", t);
    applyTheme(t);
  };
  $("model").onchange = () => {
    localStorage.setItem(`pincer.model.${canonical(state.session)}`, $("model").value);
    patch({ model: $("model").value });
  };
  $("thinking").onchange = () => patch({ thinkingLevel: $("thinking").value });
  // Without a token, a gateway without auth (loopback) lets the page in;
  // one with auth refuses, and the token is asked for.
  connect();
});
