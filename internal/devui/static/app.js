// The agentrt dev UI: talk to the agent as a mock identity (or a pasted
// token) and inspect what each request did. Plain browser JavaScript, no
// dependencies: everything comes from this server.
"use strict";

const state = {
  info: null,            // GET /dev/identities
  identity: "alice",     // a mock identity name, or "token"
  dialect: "openai",
  history: [],           // messages resent when no stored response can be referenced
  lastResponse: null,    // the last response object, for previous_response_id
  lastIdentity: null,
  turns: [],
  selected: null,
  busy: false,
};

// h builds an element; strings become text nodes (never HTML).
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === undefined || kid === null || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}
const $ = (id) => document.getElementById(id);
const fmtMS = (ms) => ms >= 1000 ? (ms / 1000).toFixed(2) + " s" : ms >= 10 ? ms.toFixed(0) + " ms" : ms.toFixed(2) + " ms";
const pretty = (v) => { try { return JSON.stringify(typeof v === "string" ? JSON.parse(v) : v, null, 2); } catch { return String(v); } };

// ---- identities -----------------------------------------------------------

function authHeaders() {
  if (state.identity === "token") {
    const t = $("token").value.trim();
    return t ? { "Authorization": "Bearer " + t } : {};
  }
  return { "X-Dev-User": state.identity };
}

async function loadIdentities() {
  const r = await fetch("/dev/identities");
  if (!r.ok) throw new Error("GET /dev/identities: " + r.status);
  state.info = await r.json();
  $("agent-name").textContent = state.info.agent;
  document.title = "agentrt dev UI · " + state.info.agent;
  const list = $("identity-list");
  list.replaceChildren();
  for (const a of state.info.identities) {
    const label = a.identity.display_name || a.identity.user_name || a.name;
    list.append(h("label", { class: "identity-option" },
      h("input", { type: "radio", name: "identity", value: a.name, checked: a.name === state.identity,
        "aria-describedby": "access-title", onchange: () => selectIdentity(a.name) }),
      h("span", {}, h("strong", {}, a.name), " ", h("small", {}, label))));
  }
  if (!state.info.identities.some((a) => a.name === state.identity) && state.info.identities.length) {
    state.identity = state.info.identities[0].name;
    list.querySelector("input").checked = true;
  }
  const man = $("manifest-list");
  man.replaceChildren();
  for (const res of state.info.resources) {
    man.append(h("li", {}, h("span", { class: "pill " + (res.binding === "user" ? "ok" : "") }, res.binding === "user" ? "as caller" : "as agent"),
      " ", h("code", {}, res.name), " ", h("small", { class: "muted" }, res.type)));
  }
  if (state.info.user_api_scopes.length) {
    man.append(h("li", { class: "muted" }, "user API scopes: ", h("code", {}, state.info.user_api_scopes.join(" "))));
  }
  renderAccess();
}

function selectIdentity(name) {
  state.identity = name;
  renderAccess();
}

let tokenTimer = null;
async function renderAccess() {
  const body = $("access-body");
  $("access-title").textContent = state.identity === "token" ? "This token may use" : state.identity + " may use";
  if (state.identity !== "token") {
    const a = state.info && state.info.identities.find((x) => x.name === state.identity);
    body.replaceChildren(a ? accessView(a) : h("span", { class: "muted" }, "unknown identity"));
    return;
  }
  const headers = authHeaders();
  if (!headers.Authorization) {
    body.replaceChildren(h("span", { class: "muted" }, "Paste a token to see what it may use."));
    return;
  }
  body.replaceChildren(h("span", { class: "muted" }, "Checking…"));
  const r = await fetch("/dev/access", { headers });
  const j = await r.json().catch(() => ({}));
  if (state.identity !== "token") return;
  body.replaceChildren(r.ok ? accessView(j) : h("div", { class: "error-box", role: "alert" }, errorText(j, r.status)));
}

function accessView(a) {
  const who = a.identity && (a.identity.user_name || a.identity.principal_id);
  return h("div", { class: "access" },
    who ? h("p", { class: "muted" }, "principal ", h("code", {}, who), a.identity.principal_id ? " (id " + a.identity.principal_id + ")" : "") : null,
    a.error ? h("div", { class: "error-box", role: "alert" }, a.error) : null,
    h("ul", { class: "plain", "aria-label": "Tools available" },
      a.tools.length ? a.tools.map((t) => h("li", { title: t.description || "" }, h("span", { class: "pill ok" }, "✓"), " ", h("code", {}, t.name)))
        : h("li", { class: "muted" }, "no tools")),
    a.skipped_tools.length ? skippedView(a.skipped_tools, "Skipped for this identity") : null);
}

function skippedView(skipped, title) {
  return h("div", { class: "skipped", role: "note", "data-testid": "skipped" },
    h("strong", {}, "⚠ " + title + " (" + skipped.length + ")"),
    h("ul", {}, skipped.map((s) => h("li", {}, h("code", {}, s.tool), s.binding ? " (" + s.binding + ")" : "", ": ", s.reason))));
}

function errorText(j, status) {
  return (j && j.error && j.error.message) || (j && j.message) || ("HTTP " + status);
}

// ---- chat -----------------------------------------------------------------

function canChain() {
  // A stored response can be referenced only by the identity that made it,
  // and only in the OpenAI dialect; a server without a store never says
  // "store": true, so the history is resent instead.
  return state.dialect === "openai" && state.lastResponse && state.lastResponse.store === true &&
    state.lastResponse.id && state.lastIdentity === identityKey();
}
const identityKey = () => state.identity === "token" ? "token" : state.identity;

function buildRequest(text) {
  const msg = { role: "user", content: text };
  const body = { input: [...state.history, msg], stream: true };
  if (canChain()) {
    body.input = [msg];
    body.previous_response_id = state.lastResponse.id;
  }
  const path = state.dialect === "openai" ? "/v1/responses" : "/invocations";
  const headers = Object.assign({ "Content-Type": "application/json" }, authHeaders());
  return { path, headers, body };
}

function curlFor(req) {
  const q = (s) => "'" + s.replace(/'/g, "'\\''") + "'";
  const lines = ["curl -sN " + q(location.origin + req.path)];
  for (const [k, v] of Object.entries(req.headers)) {
    // A pasted token stays out of what is copied.
    lines.push("  -H " + (k === "Authorization" ? "\"Authorization: Bearer $AGENTRT_TOKEN\"" : q(k + ": " + v)));
  }
  lines.push("  -d " + q(JSON.stringify(req.body)));
  return lines.join(" \\\n");
}

async function send(text) {
  if (state.busy || !text.trim()) return;
  if (state.identity === "token" && !authHeaders().Authorization) {
    $("token").focus();
    return;
  }
  state.busy = true;
  $("send").disabled = true;
  const req = buildRequest(text);
  const turn = { req, text, identity: identityKey(), items: [], response: null, requestId: null, error: null, details: null, started: performance.now() };
  state.turns.push(turn);
  const view = turnView(turn);
  $("log").append(view.root);
  view.root.scrollIntoView({ block: "end" });
  try {
    const r = await fetch(req.path, { method: "POST", headers: req.headers, body: JSON.stringify(req.body) });
    turn.requestId = r.headers.get("X-Request-Id");
    if (!r.ok || !(r.headers.get("Content-Type") || "").includes("text/event-stream")) {
      const j = await r.json().catch(() => null);
      if (!r.ok) throw new Error(errorText(j, r.status));
      turn.response = j;
      turn.items = (j && j.output) || [];
      view.setText(textOf(turn.items));
    } else {
      await readStream(r, turn, view);
    }
    turn.elapsed = performance.now() - turn.started;
    state.history.push({ role: "user", content: text });
    const answer = textOf(turn.items);
    if (answer) state.history.push({ role: "assistant", content: answer });
    state.lastResponse = turn.response;
    state.lastIdentity = turn.identity;
  } catch (e) {
    turn.error = e.message || String(e);
  }
  view.finish();
  state.busy = false;
  $("send").disabled = false;
  select(turn);
  updateMode();
  if (turn.requestId) {
    turn.details = await fetch("/dev/requests/" + encodeURIComponent(turn.requestId)).then((r) => r.ok ? r.json() : null).catch(() => null);
    if (state.selected === turn) renderInspector();
    view.finish();
  }
}

// readStream parses the data-only SSE frames of both dialects.
async function readStream(r, turn, view) {
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  const texts = new Map(); // item_id → text so far
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const frame = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = frame.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
      if (!data || data === "[DONE]") continue;
      let ev;
      try { ev = JSON.parse(data); } catch { continue; }
      switch (ev.type) {
        case "response.output_text.delta":
          texts.set(ev.item_id, (texts.get(ev.item_id) || "") + ev.delta);
          view.setText([...texts.values()].join("\n\n"));
          break;
        case "response.output_item.done":
          turn.items.push(ev.item);
          if (ev.item.type !== "message") view.setTools(turn.items);
          break;
        case "response.completed":
        case "response.failed":
        case "response.incomplete":
          turn.response = ev.response;
          break;
        case "error":
          throw new Error(ev.message || (ev.error && ev.error.message) || "stream error");
      }
      if (ev.trace_id) turn.traceId = ev.trace_id;
    }
  }
  if (turn.response && Array.isArray(turn.response.output) && turn.response.output.length) turn.items = turn.response.output;
  const final = textOf(turn.items);
  if (final) view.setText(final);
  if (turn.response && turn.response.error) throw new Error(turn.response.error.message);
}

function textOf(items) {
  return items.filter((it) => it.type === "message").flatMap((it) => it.content || [])
    .filter((p) => p.type === "output_text" || p.type === "text").map((p) => p.text).join("\n\n");
}

// toolCalls normalises both dialects: OpenAI's mcp_call items and MLflow's
// function_call + function_call_output pairs.
function toolCalls(items) {
  const out = [];
  const byCall = new Map();
  for (const it of items) {
    if (it.type === "mcp_call") {
      out.push({ id: it.id, name: it.name, arguments: it.arguments, output: it.output, error: it.error, status: it.status, server: it.server_label });
    } else if (it.type === "function_call") {
      const c = { callId: it.call_id, name: it.name, arguments: it.arguments, output: undefined, status: "waiting for the client" };
      byCall.set(it.call_id, c);
      out.push(c);
    } else if (it.type === "function_call_output") {
      const c = byCall.get(it.call_id);
      if (c) { c.output = it.output; c.status = it.status || "completed"; }
    }
  }
  return out;
}

function turnView(turn) {
  const answer = h("div", { class: "msg assistant streaming", "data-testid": "answer" });
  const meta = h("div", { class: "turn-meta" });
  const extras = h("div", {});
  const root = h("article", { class: "turn", "aria-label": "Turn " + state.turns.length },
    h("div", { class: "msg user" }, turn.text), extras, answer, meta);
  root.addEventListener("click", () => select(turn));
  return {
    root,
    setText(t) { answer.textContent = t; },
    setTools(items) {
      const n = toolCalls(items).length;
      extras.replaceChildren(n ? h("div", { class: "turn-meta" }, n + " tool call" + (n > 1 ? "s" : "") + " so far") : "");
    },
    finish() {
      answer.classList.remove("streaming");
      root.scrollIntoView({ block: "end" });
      if (!answer.textContent) answer.textContent = turn.error ? "" : "(no text)";
      const skipped = (turn.response && turn.response.custom_outputs && turn.response.custom_outputs.skipped_tools) || [];
      const calls = toolCalls(turn.items);
      extras.replaceChildren(
        turn.error ? h("div", { class: "error-box", role: "alert" }, turn.error) : "",
        skipped.length ? skippedView(skipped, "Tools skipped for " + turn.identity) : "");
      meta.replaceChildren(
        h("span", {}, "as " + turn.identity),
        h("span", {}, turn.req.path),
        turn.elapsed ? h("span", {}, fmtMS(turn.elapsed)) : "",
        calls.length ? h("span", {}, calls.length + " tool call" + (calls.length > 1 ? "s" : "")) : "",
        turn.requestId ? h("code", {}, turn.requestId) : "",
        h("button", { type: "button", class: "secondary", "aria-label": "Inspect this request", onclick: (e) => { e.stopPropagation(); select(turn); $("tab-tools").focus(); } }, "Inspect"));
    },
  };
}

function select(turn) {
  state.selected = turn;
  document.querySelectorAll(".turn").forEach((el, i) => el.classList.toggle("selected", state.turns[i] === turn));
  renderInspector();
}

function updateMode() {
  $("convo-mode").textContent = canChain()
    ? "Next message continues with previous_response_id (the server stores responses)."
    : state.history.length ? "Next message resends the " + state.history.length + " earlier messages (no stored response to reference)." : "";
}

// ---- inspector ------------------------------------------------------------

function renderInspector() {
  const t = state.selected;
  if (!t) return;
  $("inspect-title").textContent = "Request " + (t.requestId || "(no id)") + " as " + t.identity;
  renderTools(t);
  renderTrace(t);
  renderAudit(t);
  renderRaw(t);
}

function renderTools(t) {
  const p = $("panel-tools");
  const calls = toolCalls(t.items);
  const traced = (t.details && t.details.tool_calls) || [];
  const skipped = (t.response && t.response.custom_outputs && t.response.custom_outputs.skipped_tools) || [];
  p.replaceChildren(
    skipped.length ? skippedView(skipped, "Skipped for " + t.identity) : "",
    calls.length ? "" : h("p", { class: "muted" }, "No tool calls in this response."),
    ...calls.map((c, i) => {
      const tr = traced.find((x) => c.callId && x.call_id === c.callId) || traced.filter((x) => x.name === c.name)[calls.filter((y, j) => j < i && y.name === c.name).length];
      const failed = c.error || (tr && tr.error) || (typeof c.output === "string" && c.output.startsWith("Error:"));
      return h("section", { class: "card tool-card", "data-testid": "tool-card", "aria-label": "Tool call " + c.name },
        h("h4", {}, h("code", {}, c.name), h("span", { class: "pill " + (failed ? "err" : "ok") }, failed ? "error" : (c.status || "completed")),
          c.server ? h("span", { class: "pill" }, c.server) : ""),
        h("dl", {},
          h("dt", {}, "ran as"), h("dd", { "data-testid": "principal" }, tr ? (tr.principals.length ? tr.principals.join(", ") : "no workspace call") : (t.details ? "not traced" : "…")),
          h("dt", {}, "duration"), h("dd", {}, tr ? fmtMS(tr.duration_ms) : "…"),
          tr && tr.workspace_calls.length ? [h("dt", {}, "workspace"), h("dd", {}, tr.workspace_calls.map((w) => h("div", { class: "mono" }, w.principal + " " + w.method + " " + w.path + " → " + w.status)))] : ""),
        h("div", { class: "muted" }, "arguments"), h("pre", {}, pretty(c.arguments || "")),
        c.error ? [h("div", { class: "muted" }, "error"), h("pre", { class: "error-box" }, typeof c.error === "string" ? c.error : pretty(c.error))] : "",
        c.output !== undefined && c.output !== null ? [h("div", { class: "muted" }, "output"), h("pre", {}, pretty(c.output))] : "");
    }));
}

function spanDepths(spans) {
  const byId = new Map(spans.map((s) => [s.span_id, s]));
  const depth = (s, n = 0) => (s.parent_id && byId.has(s.parent_id) && n < 32) ? depth(byId.get(s.parent_id), n + 1) + 1 : 0;
  // Children under their parents, in start order.
  const kids = new Map();
  for (const s of spans) {
    const k = s.parent_id && byId.has(s.parent_id) ? s.parent_id : "";
    if (!kids.has(k)) kids.set(k, []);
    kids.get(k).push(s);
  }
  const out = [];
  const walk = (k) => { for (const s of (kids.get(k) || []).sort((a, b) => a.start_ms - b.start_ms)) { out.push([s, depth(s)]); walk(s.span_id); } };
  walk("");
  return out;
}

const shownAttrs = ["enduser.id", "gen_ai.tool.name", "gen_ai.request.model", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
  "http.response.status_code", "url.full", "tools.prepared", "tools.skipped", "agentrt.tools.count", "agentrt.tools.skipped", "agentrt.request_id", "error.type"];

function renderTrace(t) {
  const p = $("panel-trace");
  const spans = (t.details && t.details.spans) || [];
  if (!spans.length) {
    p.replaceChildren(h("p", { class: "muted" }, t.details ? "No spans were recorded for this request." : "Loading the trace…"));
    return;
  }
  const total = Math.max(...spans.map((s) => s.start_ms + s.duration_ms), 0.001);
  const rows = spanDepths(spans).map(([s, d]) => {
    const attrs = Object.entries(s.attributes || {}).filter(([k]) => shownAttrs.includes(k));
    const bar = h("div", { class: "span-bar" + (s.error ? " error" : ""), title: s.name + " " + fmtMS(s.duration_ms) });
    bar.style.left = (100 * s.start_ms / total) + "%";
    bar.style.width = (100 * s.duration_ms / total) + "%";
    const track = h("div", { class: "span-track", "aria-hidden": "true" }, bar);
    for (const ev of s.events || []) {
      const m = h("div", { class: "span-event", title: ev.name });
      m.style.left = (100 * ev.at_ms / total) + "%";
      track.append(m);
    }
    const name = h("summary", { style: null }, "\u00a0".repeat(d * 3), s.name, " ", h("span", { class: "muted" }, fmtMS(s.duration_ms)), s.error ? h("span", { class: "pill err" }, s.error) : "");
    const det = h("details", {}, name,
      attrs.length ? h("dl", { class: "mono" }, attrs.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])) : "",
      (s.events || []).map((ev) => h("div", { class: "span-event-line" }, "· " + ev.name + " " + Object.entries(ev.attributes || {}).map(([k, v]) => k + "=" + v).join(" "))));
    return h("div", { class: "span-row", "data-testid": "span", "data-name": s.name }, det, track);
  });
  p.replaceChildren(h("div", { class: "timeline", role: "list", "aria-label": "Trace timeline" }, rows.map((r) => { r.setAttribute("role", "listitem"); return r; })),
    h("p", { class: "hint muted" }, "Total " + fmtMS(total) + ". Open a span for its attributes; orange marks are events such as tool.skipped."));
}

function renderAudit(t) {
  const p = $("panel-audit");
  const rows = (t.details && t.details.audit) || [];
  if (!rows.length) {
    p.replaceChildren(h("p", { class: "muted" }, t.details ? "The dev workspace recorded no call for this request." : "Loading…"));
    return;
  }
  p.replaceChildren(
    h("p", { class: "muted" }, "Dev workspace calls with X-Request-Id ", h("code", {}, t.requestId), ":"),
    h("table", {}, h("thead", {}, h("tr", {}, ["#", "principal", "auth", "method", "path", "status"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows.map((e) => h("tr", {}, h("td", {}, e.seq), h("td", {}, e.principal || "(anonymous)"), h("td", {}, e.auth_method || ""),
        h("td", {}, e.method), h("td", { class: "path" }, e.path), h("td", {}, h("span", { class: "pill " + (e.status < 300 ? "ok" : e.status < 500 ? "warn" : "err") }, e.status)))))));
}

function renderRaw(t) {
  const p = $("panel-raw");
  const curl = curlFor(t.req);
  const block = (title, text, testid) => [
    h("div", { class: "raw-head" }, h("h4", {}, title),
      h("button", { type: "button", class: "secondary", "aria-label": "Copy " + title, onclick: (e) => copy(text, e.currentTarget) }, "Copy")),
    h("pre", { "data-testid": testid }, text)];
  p.replaceChildren(
    ...block("curl", curl, "curl"),
    ...block("Request", pretty({ method: "POST", path: t.req.path, body: t.req.body }), "raw-request"),
    ...block("Response", t.response ? pretty(t.response) : (t.error || "(none)"), "raw-response"));
}

async function copy(text, btn) {
  try {
    await navigator.clipboard.writeText(text);
    btn.textContent = "Copied";
  } catch {
    btn.textContent = "Select and copy";
  }
  setTimeout(() => { btn.textContent = "Copy"; }, 1500);
}

// ---- wiring ---------------------------------------------------------------

function setupTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  const show = (tab) => {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
      $(t.getAttribute("aria-controls")).hidden = !on;
    }
  };
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => show(tab));
    tab.addEventListener("keydown", (e) => {
      const j = e.key === "ArrowRight" ? (i + 1) % tabs.length : e.key === "ArrowLeft" ? (i + tabs.length - 1) % tabs.length : -1;
      if (j >= 0) { e.preventDefault(); show(tabs[j]); tabs[j].focus(); }
    });
  });
}

function newChat() {
  state.history = [];
  state.lastResponse = null;
  state.turns = [];
  state.selected = null;
  $("log").replaceChildren();
  for (const id of ["panel-tools", "panel-trace", "panel-audit", "panel-raw"]) $(id).replaceChildren();
  $("inspect-title").textContent = "Send a message to see what the request did.";
  updateMode();
  $("prompt").focus();
}

function init() {
  setupTabs();
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("prompt").value;
    if (!text.trim() || state.busy) return;
    $("prompt").value = "";
    send(text);
  });
  $("prompt").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $("composer").requestSubmit();
    }
  });
  for (const r of document.querySelectorAll('input[name="dialect"]')) {
    r.addEventListener("change", () => { state.dialect = r.value; updateMode(); });
  }
  $("identity-token-radio").addEventListener("change", () => selectIdentity("token"));
  $("token").addEventListener("focus", () => { $("identity-token-radio").checked = true; selectIdentity("token"); });
  $("token").addEventListener("input", () => {
    clearTimeout(tokenTimer);
    tokenTimer = setTimeout(renderAccess, 300);
  });
  $("new-chat").addEventListener("click", newChat);
  loadIdentities().catch((e) => {
    $("access-body").replaceChildren(h("div", { class: "error-box", role: "alert" }, "Could not load the identities: " + e.message));
  });
  $("prompt").focus();
}

document.addEventListener("DOMContentLoaded", init);
