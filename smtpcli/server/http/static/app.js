// smtpcli serve --http web inbox: plain DOM, no build step. Message data is only ever put
// in the page as text (textContent), never as markup; message HTML is shown in an iframe with
// sandbox="" from /view/ID.html, which the server sends under a no-script CSP.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { messages: [], total: 0, unread: 0, selected: null, query: "", remote: false };

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const resp = await fetch(path, init);
  if (!resp.ok) throw new Error(`${method} ${path}: ${resp.status}`);
  const type = resp.headers.get("Content-Type") || "";
  return type.startsWith("application/json") ? resp.json() : resp.text();
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) node.append(child);
  return node;
}

const addr = (a) => (a ? (a.Name ? `${a.Name} <${a.Address}>` : a.Address) : "");
const when = (iso) => new Date(iso).toLocaleString();

async function load() {
  const q = state.query;
  const data = q
    ? await api("GET", `/api/v1/search?limit=500&query=${encodeURIComponent(q)}`)
    : await api("GET", "/api/v1/messages?limit=500");
  state.messages = data.messages;
  state.total = data.total;
  state.unread = data.unread;
  renderList();
}

function renderList() {
  const list = $("#list");
  list.replaceChildren();
  if (!state.messages.length) {
    list.append(el("p", { className: "empty", textContent: state.query ? "No message matches." : "No messages yet. Send one to the SMTP port." }));
  }
  for (const m of state.messages) {
    const item = el("button", { type: "button", className: "item" },
      el("div", { className: "row" },
        el("span", { className: "from", textContent: addr(m.From) || "(no sender)" }),
        el("span", { className: "when", textContent: when(m.Created) })),
      el("div", { className: "subject", textContent: m.Subject || "(no subject)" }),
      el("div", { className: "snippet", textContent: `To: ${m.To.map(addr).join(", ")} - ${m.Snippet}` }));
    item.dataset.id = m.ID;
    if (!m.Read) item.classList.add("unread");
    if (m.ID === state.selected) item.classList.add("selected");
    item.addEventListener("click", () => openMessage(m.ID));
    list.append(item);
  }
  $("#counts").textContent = `${state.total} message${state.total === 1 ? "" : "s"}, ${state.unread} unread`;
}

function showTab(name) {
  for (const b of document.querySelectorAll(".tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  for (const p of document.querySelectorAll(".pane")) p.classList.toggle("active", p.id === `pane-${name}`);
}

function facts(dl, rows) {
  dl.replaceChildren();
  for (const [label, value] of rows) {
    if (value === undefined || value === null || value === "") continue;
    dl.append(el("dt", { textContent: label }), el("dd", { textContent: String(value) }));
  }
}

async function openMessage(id) {
  state.selected = id;
  state.remote = false;
  const base = `/api/v1/message/${encodeURIComponent(id)}`;
  const [msg, headers, envelope, transcript] = await Promise.all([
    api("GET", base), api("GET", `${base}/headers`), api("GET", `${base}/envelope`), api("GET", `${base}/transcript`),
  ]);
  const view = $("#view");
  view.hidden = false;
  view.dataset.id = id;
  $("#subject").textContent = msg.Subject || "(no subject)";
  facts($("#meta"), [
    ["From", addr(msg.From)], ["To", msg.To.map(addr).join(", ")], ["Cc", msg.Cc.map(addr).join(", ")],
    ["Bcc", msg.Bcc.map(addr).join(", ")], ["Reply-To", msg.ReplyTo.map(addr).join(", ")],
    ["Date", when(msg.Date)], ["Size", `${msg.Size} bytes`],
  ]);
  const atts = $("#attachments");
  atts.replaceChildren();
  for (const a of [...msg.Attachments, ...msg.Inline]) {
    const link = el("a", { href: `${base}/part/${encodeURIComponent(a.PartID)}`, textContent: `${a.FileName || a.ContentType} (${a.Size} B)` });
    link.setAttribute("download", a.FileName || `part-${a.PartID}`);
    atts.append(el("li", {}, link));
  }
  const frame = $("#html-frame");
  frame.src = msg.HTML ? `/view/${encodeURIComponent(id)}.html?embed=1` : "about:blank";
  $("#remote-notice").hidden = !msg.HTML;
  $("#pane-text").textContent = msg.Text || "(no text part)";
  const table = $("#pane-headers");
  table.replaceChildren();
  for (const [name, values] of Object.entries(headers)) {
    for (const v of values) table.append(el("tr", {}, el("td", { textContent: name }), el("td", { textContent: v })));
  }
  $("#raw").textContent = await api("GET", `${base}/raw`);
  $("#raw-download").href = `${base}/raw?dl=1`;
  const tls = envelope.tls ? `${envelope.tls.version} ${envelope.tls.cipher || ""}` : "no";
  const auth = envelope.auth ? `${envelope.auth.user} (${envelope.auth.mechanism || "?"})` : "no";
  facts($("#smtp-facts"), [
    ["Client", envelope.peer], ["HELO/EHLO", envelope.helo], ["MAIL FROM", `<${envelope.mail_from}> ${(envelope.mail_options || []).join(" ")}`],
    ["RCPT TO", envelope.rcpt_tos.map((r) => `<${r}>`).join(" ") + " " + (envelope.rcpt_options || []).join(" ")],
    ["TLS", tls], ["AUTH", auth], ["Received", envelope.received_at],
  ]);
  $("#transcript").textContent = transcript.Transcript.join("\n");
  showTab(msg.HTML ? "html" : "text");
  const item = state.messages.find((m) => m.ID === id);
  if (item) item.Read = true;
  renderList();
}

function closeView() {
  state.selected = null;
  $("#view").hidden = true;
  $("#html-frame").src = "about:blank";
}

function connect() {
  const source = new EventSource("/api/v1/events");
  source.onopen = () => { $("#live").classList.add("on"); load(); };
  source.onerror = () => $("#live").classList.remove("on");
  source.addEventListener("new", (ev) => {
    const m = JSON.parse(ev.data);
    state.total += 1;
    state.unread += 1;
    if (!state.query) state.messages.unshift(m);
    if (state.query) load(); else renderList();
  });
  source.addEventListener("delete", (ev) => {
    const gone = new Set(JSON.parse(ev.data).IDs);
    if (gone.has(state.selected)) closeView();
    load();
  });
  source.addEventListener("read", () => load());
}

function setup() {
  for (const b of document.querySelectorAll(".tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));
  $("#search").addEventListener("submit", (ev) => { ev.preventDefault(); state.query = $("#query").value.trim(); load().catch(() => {}); });
  $("#query").addEventListener("search", () => { state.query = $("#query").value.trim(); load().catch(() => {}); });
  $("#delete").addEventListener("click", async () => {
    const id = $("#view").dataset.id;
    closeView();
    await api("DELETE", "/api/v1/messages", { IDs: [id] });
  });
  const all = $("#delete-all");
  all.addEventListener("click", async () => {
    if (!all.classList.contains("armed")) {  // a second click confirms (no modal dialog)
      all.classList.add("armed");
      all.textContent = "Click again to delete all";
      setTimeout(() => { all.classList.remove("armed"); all.textContent = "Delete all"; }, 3000);
      return;
    }
    all.classList.remove("armed");
    all.textContent = "Delete all";
    closeView();
    await api("DELETE", "/api/v1/messages");
  });
  $("#remote").addEventListener("click", () => {
    const id = $("#view").dataset.id;
    state.remote = true;
    $("#html-frame").src = `/view/${encodeURIComponent(id)}.html?embed=1&remote=1`;
    $("#remote-notice").hidden = true;
  });
  connect();
}

document.addEventListener("DOMContentLoaded", setup);
