"use strict";
// Cutover dashboard: a hash-routed page built with DOM calls only (data is
// never parsed as HTML). Reads and actions go to /ui/api/<Operation>, which
// calls the CodeDeploy API as the signed-in key; live pages follow
// /ui/events (Server-Sent Events driven by the server's change feed).

const S = { session: null, stream: null, timer: null, state: null };
window.__latency = []; // [{changedAt, domAt}] for the latency benchmark
let pendingChange = 0;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "width") e.style.width = v; // CSSOM: allowed by the CSP, unlike a style attribute
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids.flat()) {
    if (k === undefined || k === null || k === false) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}
const $ = (id) => document.getElementById(id);

async function api(op, body) {
  const r = await fetch("/ui/api/" + op, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-Cutover-Csrf": S.session ? S.session.csrf : "" },
    body: JSON.stringify(body || {}),
    // A request that never comes back says so instead of leaving the
    // page waiting without a word.
    signal: AbortSignal.timeout(30000),
  });
  const data = await r.json().catch(() => ({}));
  if (r.status === 401) { showLogin(); throw new Error("signed out"); }
  if (!r.ok) throw new Error((data.__type || r.status) + ": " + (data.message || ""));
  return data;
}
async function getJSON(url) {
  const r = await fetch(url, { credentials: "same-origin" });
  const data = await r.json().catch(() => ({}));
  if (r.status === 401) { showLogin(); throw new Error("signed out"); }
  if (!r.ok) throw new Error((data.__type || r.status) + ": " + (data.message || ""));
  return data;
}

function stopLive() {
  if (S.stream) { S.stream.close(); S.stream = null; }
  if (S.timer) { clearInterval(S.timer); S.timer = null; }
}

function setMain(...kids) { const m = $("main"); m.replaceChildren(...kids); }
function crumbs(...parts) { $("crumbs").replaceChildren(...parts.map(([t, h]) => el("a", { href: h }, t))); }

function showLogin() {
  stopLive();
  S.session = null;
  $("who").textContent = ""; $("btn-logout").hidden = true;
  crumbs();
  const f = $("tpl-login").content.cloneNode(true);
  setMain(f);
  $("login").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { accessKeyId: $("login-key").value.trim(), secretAccessKey: $("login-secret").value, region: $("login-region").value.trim() };
    const r = await fetch("/ui/login", { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) { $("login-error").textContent = data.message || "sign-in failed"; return; }
    signedIn(data);
  });
}

function signedIn(sess) {
  S.session = sess;
  $("who").textContent = sess.principal + " · " + sess.region;
  $("btn-logout").hidden = false;
  route();
}

$("btn-logout") && $("btn-logout").addEventListener("click", async () => {
  await fetch("/ui/logout", { method: "POST", credentials: "same-origin", headers: { "X-Cutover-Csrf": S.session ? S.session.csrf : "" } });
  showLogin();
});

function statusSpan(s, id) { return el("span", { class: "status s-" + s, id }, s || "?"); }
function fmtTime(t) { return t ? new Date(t * 1000).toLocaleString() : ""; }

// Live lists: re-read on every "deployments" event of the change feed.
function follow(url, handlers) {
  stopLive();
  const es = new EventSource(url, { withCredentials: true });
  for (const [ev, fn] of Object.entries(handlers)) es.addEventListener(ev, (m) => fn(JSON.parse(m.data)));
  es.onerror = () => { const b = $("live"); if (b) b.textContent = "reconnecting…"; };
  es.onopen = () => { const b = $("live"); if (b) b.textContent = "live"; };
  S.stream = es;
}

async function applications() {
  crumbs(["Applications", "#/"]);
  const names = (await api("ListApplications")).applications || [];
  const box = el("div", { class: "card" }, el("h2", {}, "Applications ", el("small", { id: "live", class: "muted" }, "")));
  const tbl = el("table", { id: "apps" }, el("tr", {}, el("th", {}, "Application"), el("th", {}, "Platform"), el("th", {}, "Created")));
  if (names.length) {
    const infos = (await api("BatchGetApplications", { applicationNames: names })).applicationsInfo || [];
    for (const a of infos) tbl.append(el("tr", {}, el("td", {}, el("a", { href: "#/app/" + encodeURIComponent(a.applicationName) }, a.applicationName)), el("td", {}, a.computePlatform || ""), el("td", {}, fmtTime(a.createTime))));
  } else tbl.append(el("tr", {}, el("td", { colspan: 3, class: "muted" }, "No applications yet.")));
  box.append(tbl);
  setMain(box);
}

async function application(app, filters) {
  crumbs(["Applications", "#/"], [app, "#/app/" + encodeURIComponent(app)]);
  const groups = (await api("ListDeploymentGroups", { applicationName: app })).deploymentGroups || [];
  const gbox = el("div", { class: "card" }, el("h2", {}, "Deployment groups"));
  const gt = el("table", { id: "groups" }, el("tr", {}, el("th", {}, "Group"), el("th", {}, "Type"), el("th", {}, "Config"), el("th", {}, "Target groups"), el("th", {}, "Fleet now")));
  if (groups.length) {
    const infos = (await api("BatchGetDeploymentGroups", { applicationName: app, deploymentGroupNames: groups })).deploymentGroupsInfo || [];
    for (const g of infos) {
      const tgs = ((g.loadBalancerInfo || {}).targetGroupInfoList || []).map((t) => t.name).join(", ");
      // The instances the group deploys to now: after a blue/green
      // deployment they are the replacements, whatever the tag filters say.
      const fleet = el("td", { class: "fleet", "data-group": g.deploymentGroupName }, "…");
      api("GetDeploymentGroupFleet", { applicationName: app, deploymentGroupName: g.deploymentGroupName })
        .then((f) => { fleet.textContent = (f.instances || []).join(" ") || "none"; if ((f.retired || []).length) fleet.title = "retired: " + f.retired.join(" "); })
        .catch((e) => { fleet.textContent = "–"; fleet.title = e.message; });
      gt.append(el("tr", {}, el("td", {}, el("a", { href: "#/app/" + encodeURIComponent(app) + "?group=" + encodeURIComponent(g.deploymentGroupName) }, g.deploymentGroupName)),
        el("td", {}, (g.deploymentStyle || {}).deploymentType || "IN_PLACE"), el("td", {}, g.deploymentConfigName || ""), el("td", {}, tgs), fleet));
    }
  }
  gbox.append(gt);
  const statusSel = el("select", { id: "filter-status" }, ["", "Created", "Queued", "InProgress", "Ready", "Succeeded", "Failed", "Stopped"].map((s) => el("option", { value: s, selected: s === (filters.status || "") }, s || "any status")));
  const groupSel = el("select", { id: "filter-group" }, el("option", { value: "" }, "any group"), groups.map((g) => el("option", { value: g, selected: g === filters.group }, g)));
  const apply = () => { location.hash = "#/app/" + encodeURIComponent(app) + "?group=" + encodeURIComponent(groupSel.value) + "&status=" + encodeURIComponent(statusSel.value); };
  statusSel.addEventListener("change", apply); groupSel.addEventListener("change", apply);
  const dbox = el("div", { class: "card" }, el("h2", {}, "Deployments ", el("small", { id: "live", class: "muted" }, "")), el("div", { class: "filters" }, groupSel, statusSel));
  const dt = el("table", { id: "deployments" });
  dbox.append(dt);
  setMain(gbox, dbox);
  const load = async () => {
    const body = { applicationName: app };
    if (filters.group) body.deploymentGroupName = filters.group;
    if (filters.status) body.includeOnlyStatuses = [filters.status];
    let ids = [];
    if (filters.group || !groups.length) ids = (await api("ListDeployments", body)).deployments || [];
    else for (const g of groups) ids = ids.concat((await api("ListDeployments", { ...body, deploymentGroupName: g })).deployments || []);
    const rows = [el("tr", {}, el("th", {}, "Deployment"), el("th", {}, "Group"), el("th", {}, "Status"), el("th", {}, "Progress"), el("th", {}, "Created"), el("th", {}, "Creator"))];
    let infos = [];
    for (let i = 0; i < ids.length && i < 100; i += 25) infos = infos.concat((await api("BatchGetDeployments", { deploymentIds: ids.slice(i, i + 25) })).deploymentsInfo || []);
    infos.sort((a, b) => (b.createTime || 0) - (a.createTime || 0));
    for (const d of infos) rows.push(el("tr", { "data-id": d.deploymentId }, el("td", {}, el("a", { href: "#/deployment/" + d.deploymentId }, d.deploymentId)),
      el("td", {}, d.deploymentGroupName), el("td", {}, statusSpan(d.status)), el("td", {}, bar(d.deploymentOverview)), el("td", {}, fmtTime(d.createTime)), el("td", {}, d.creator || "")));
    if (!infos.length) rows.push(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No deployments.")));
    dt.replaceChildren(...rows);
  };
  await load();
  let busy = false, again = false;
  follow("/ui/events", { deployments: async () => {
    if (busy) { again = true; return; }
    busy = true;
    try { do { again = false; await load(); } while (again); } finally { busy = false; }
  } });
}

function bar(ov) {
  ov = ov || {};
  const n = ["Succeeded", "Failed", "InProgress", "Ready", "Skipped", "Pending"].reduce((s, k) => s + (ov[k] || 0), 0) || 1;
  const part = (k, c) => el("span", { class: c, width: (100 * (ov[k] || 0) / n) + "%" });
  return el("div", { class: "bar", title: JSON.stringify(ov) }, part("Succeeded", "ok"), part("Failed", "bad"), part("InProgress", "run"), part("Ready", "rdy"), part("Skipped", "skp"));
}

const EVENTS_ORDER = ["ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall", "ApplicationStart", "ValidateService",
  "BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic", "BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"];

async function deployment(id) {
  stopLive();
  crumbs(["Applications", "#/"]);
  const head = el("div", { class: "card" },
    el("h2", {}, "Deployment ", el("code", {}, id), " ", el("span", { id: "dep-status" }, ""), " ", el("small", { id: "live", class: "muted" }, "")),
    el("div", { id: "dep-meta", class: "muted" }),
    el("div", { id: "dep-bar" }),
    el("p", { id: "dep-error", class: "error" }));
  const bg = el("div", { class: "card", id: "bg" },
    el("h3", {}, "Blue/green"),
    el("div", { class: "controls" },
      el("span", {}, "Phase: ", el("b", { id: "phase" }, "–")),
      el("span", {}, "Wait: ", el("span", { id: "countdown" }, "–")),
      el("button", { id: "btn-continue", class: "primary", disabled: true, onclick: () => act("continue") }, "Continue"),
      el("button", { id: "btn-stop", disabled: true, onclick: () => act("stop") }, "Stop"),
      el("button", { id: "btn-stop-rollback", class: "danger", disabled: true, onclick: () => act("rollback") }, "Stop and roll back")),
    el("p", { id: "action-result", class: "muted" }));
  const grid = el("div", { class: "card" }, el("h3", {}, "Instances × lifecycle events"), el("table", { id: "grid" }), el("div", { id: "detail" }));
  const trafficBox = el("div", { class: "card", id: "traffic" }, el("h3", {}, "Traffic"));
  const rates = el("div", { class: "card", id: "rates" }, el("h3", {}, "Request rate and errors"), el("p", { class: "muted" }, "Waiting for the router's counters…"));
  const triggers = el("div", { class: "card", id: "deliveries" }, el("h3", {}, "Trigger deliveries"), el("p", { class: "muted" }, "No deliveries."));
  const logSel = el("select", { id: "log-instance" }, el("option", { value: "" }, "all instances"));
  const logs = el("div", { class: "card" }, el("h3", {}, "Hook logs ", logSel), el("div", { id: "logs" }, el("p", { class: "muted" }, "No output yet.")), el("div", { id: "logs-unstreamed" }));
  S.streamed = null;
  setMain(head, bg, el("div", { class: "row" }, trafficBox, rates), grid, logs, triggers);
  const mo = new MutationObserver(() => {
    if (pendingChange) { window.__latency.push({ changedAt: pendingChange, domAt: performance.timeOrigin + performance.now() }); pendingChange = 0; }
  });
  mo.observe($("main"), { subtree: true, childList: true, characterData: true, attributes: true });
  let logBusy = false, logAgain = false;
  const loadLogs = async () => {
    if (logBusy) { logAgain = true; return; }
    logBusy = true;
    try {
      do {
        logAgain = false;
        const inst = logSel.value;
        const data = await getJSON("/ui/logs?deployment=" + encodeURIComponent(id) + (inst ? "&instance=" + encodeURIComponent(inst) : ""));
        renderLogs(data.logs || []);
      } while (logAgain);
    } finally { logBusy = false; }
  };
  logSel.addEventListener("change", loadLogs);
  // A step records its deliveries in its own transaction and the worker
  // then writes each twice (claim, outcome): the change feed announces
  // them in bursts that coincide with the deployment's own changes. One
  // reload per burst, a little after it, keeps the log live without
  // competing with the state updates for the server and the page.
  let dTimer = null, dLast = "";
  const loadDeliveries = () => {
    if (dTimer) return;
    dTimer = setTimeout(async () => {
      try {
        const data = await getJSON("/ui/triggers?deployment=" + encodeURIComponent(id));
        const text = JSON.stringify(data.deliveries || []);
        if (text !== dLast) { dLast = text; renderDeliveries(data.deliveries || []); }
      } catch (e) { /* the next announcement retries */ } finally { dTimer = null; }
    }, 300);
  };
  follow("/ui/events?deployment=" + encodeURIComponent(id), {
    state: (st) => { pendingChange = st.changedAt || 0; render(st); },
    log: loadLogs,
    deliveries: loadDeliveries,
    rates: renderRates,
    failure: (e) => { $("dep-error").textContent = e.message; },
  });
  S.timer = setInterval(tick, 250);
}

function render(st) {
  S.state = st;
  S.skew = Date.now() - Date.parse(st.serverTime);
  const d = st.deployment || {};
  $("dep-status").replaceChildren(statusSpan(d.status, "status"));
  $("dep-meta").textContent = [d.applicationName, d.deploymentGroupName, d.deploymentConfigName, (d.deploymentStyle || {}).deploymentType, "created " + fmtTime(d.createTime)].join(" · ");
  $("dep-bar").replaceChildren(bar(d.deploymentOverview), el("span", { id: "counts", class: "muted" }, Object.entries(d.deploymentOverview || {}).map(([k, v]) => k + " " + v).join(" · ")));
  $("dep-error").textContent = d.errorInformation ? d.errorInformation.code + ": " + d.errorInformation.message : "";
  const w = st.waits || {};
  $("phase").textContent = w.phase || "–";
  const terminal = ["Succeeded", "Failed", "Stopped"].includes(d.status);
  const canContinue = d.status === "Ready" || (d.instanceTerminationWaitTimeStarted && !terminal);
  $("btn-continue").disabled = !canContinue;
  $("btn-stop").disabled = terminal;
  $("btn-stop-rollback").disabled = terminal;
  $("bg").hidden = (d.deploymentStyle || {}).deploymentType !== "BLUE_GREEN";
  // Grid: rows are instances, columns the union of their events in order.
  const names = new Set();
  const targets = (st.targets || []).map((t) => t.instanceTarget).filter(Boolean);
  for (const t of targets) for (const e of t.lifecycleEvents || []) names.add(e.lifecycleEventName);
  const cols = [...names].sort((a, b) => EVENTS_ORDER.indexOf(a) - EVENTS_ORDER.indexOf(b));
  const rows = [el("tr", {}, el("th", {}, "Instance"), el("th", {}, "Label"), el("th", {}, "Status"), cols.map((c) => el("th", {}, c)))];
  const sel = $("log-instance");
  const have = new Set([...sel.options].map((o) => o.value));
  for (const t of targets) {
    if (!have.has(t.targetId)) sel.append(el("option", { value: t.targetId }, t.targetId));
    const evs = Object.fromEntries((t.lifecycleEvents || []).map((e) => [e.lifecycleEventName, e]));
    rows.push(el("tr", { "data-target": t.targetId }, el("td", {}, t.targetId), el("td", {}, t.instanceLabel || ""), el("td", {}, statusSpan(t.status)),
      cols.map((c) => { const e = evs[c]; const s = e ? e.status : ""; return el("td", { class: "ev " + s, "data-event": c, title: s, onclick: () => detail(t.targetId, e) }, s); })));
  }
  $("grid").replaceChildren(...rows);
  renderTraffic(st.traffic || []);
  renderUnstreamed();
}

function detail(target, e) {
  if (!e) return;
  const dg = e.diagnostics || {};
  $("detail").replaceChildren(el("div", { class: "card" }, el("b", {}, target + " · " + e.lifecycleEventName + " · " + e.status),
    el("div", { class: "muted" }, fmtTime(e.startTime) + " → " + fmtTime(e.endTime)),
    dg.errorCode ? el("div", {}, "Error code: " + dg.errorCode + (dg.scriptName ? " · script " + dg.scriptName : "")) : null,
    dg.message ? el("div", {}, dg.message) : null,
    dg.logTail ? el("pre", {}, dg.logTail) : null,
    el("a", { href: "#", onclick: (ev) => { ev.preventDefault(); $("log-instance").value = target; $("log-instance").dispatchEvent(new Event("change")); } }, "full log of " + target)));
}

function renderTraffic(tgs) {
  const box = $("traffic");
  const parts = [el("h3", {}, "Traffic")];
  if (!tgs.length) parts.push(el("p", { class: "muted" }, "No target groups."));
  for (const g of tgs) {
    const tbl = el("table", { "data-tg": g.name }, el("tr", {}, el("th", {}, "Member"), el("th", {}, "Address"), el("th", {}, "Weight"), el("th", {}, "State"), el("th", {}, "Healthy"), el("th", {}, "In flight")));
    for (const m of g.members) tbl.append(el("tr", { "data-member": m.id, "data-state": m.state }, el("td", {}, m.id), el("td", {}, m.addr), el("td", {}, m.weight), el("td", { class: m.state }, m.state), el("td", {}, m.healthy ? "yes" : "no"), el("td", {}, m.inFlight)));
    const serving = g.members.filter((m) => m.state === "serving").map((m) => m.id).join(" ");
    parts.push(el("h4", {}, "Target group " + g.name), g.error ? el("p", { class: "error" }, g.error) : null, tbl, el("p", { class: "muted" }, "Serving: ", el("span", { class: "serving-list", "data-tg": g.name }, serving || "none")));
  }
  box.replaceChildren(...parts.filter(Boolean));
}

// The rates come from the builtin router's counters (the series of
// /metrics), which live in the server's memory: the server sends them on
// its traffic refresh tick, not from the change feed.
function renderRates(tgs) {
  const box = $("rates");
  const parts = [el("h3", {}, "Request rate and errors")];
  const num = (v) => (Math.round(v * 100) / 100).toFixed(2);
  if (!tgs.length) parts.push(el("p", { class: "muted" }, "No builtin-router target groups."));
  for (const g of tgs) {
    const span = g.window ? "over the last " + Math.round(g.window) + " s" : "measuring…";
    parts.push(el("h4", {}, "Target group " + g.name + " · ", el("span", { class: "tg-rate", "data-tg": g.name }, num(g.requestRate)), " req/s · ",
      el("span", { class: "tg-error-rate", "data-tg": g.name }, num(g.errorRate)), " errors/s ", el("small", { class: "muted" }, span)));
    const tbl = el("table", { "data-tg": g.name }, el("tr", {}, el("th", {}, "Backend"), el("th", {}, "Member"), el("th", {}, "req/s"), el("th", {}, "errors/s"), el("th", {}, "Requests"), el("th", {}, "Errors")));
    for (const b of g.backends) tbl.append(el("tr", { "data-backend": b.backend, "data-member": b.member || "" }, el("td", {}, b.backend), el("td", { class: b.member ? "" : "muted" }, b.member || "not a member now"),
      el("td", { class: "req-rate" }, num(b.requestRate)), el("td", { class: "err-rate" + (b.errorRate > 0 ? " bad" : "") }, num(b.errorRate)), el("td", {}, b.requests), el("td", {}, b.errors)));
    if (!g.backends.length) tbl.append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No requests through the builtin router yet (an HAProxy target group keeps its own statistics).")));
    parts.push(tbl);
  }
  parts.push(el("p", { class: "muted" }, "From the router's cutover_router_requests_total series (errors: 5xx answers and failed attempts); refreshed every 2 s."));
  box.replaceChildren(...parts);
}

function renderDeliveries(ds) {
  const box = $("deliveries");
  const parts = [el("h3", {}, "Trigger deliveries")];
  if (!ds.length) { box.replaceChildren(...parts, el("p", { class: "muted" }, "No deliveries.")); return; }
  const fmt = (t) => t ? new Date(t).toLocaleString() : "";
  const tbl = el("table", { id: "delivery-log" }, el("tr", {}, el("th", {}, "Event"), el("th", {}, "Instance"), el("th", {}, "Trigger"), el("th", {}, "Topic"),
    el("th", {}, "Status"), el("th", {}, "Attempts"), el("th", {}, "HTTP"), el("th", {}, "Last error"), el("th", {}, "Created"), el("th", {}, "Delivered / next attempt")));
  for (const d of ds) tbl.append(el("tr", { "data-event": d.event, "data-status": d.status, "data-instance": d.instance || "" },
    el("td", {}, d.event), el("td", {}, d.instance || ""), el("td", {}, d.trigger), el("td", {}, d.topicArn), el("td", {}, statusSpan(d.status)),
    el("td", {}, d.attempts), el("td", {}, d.lastHttpStatus || ""), el("td", { class: d.lastError ? "error" : "" }, d.lastError || ""),
    el("td", {}, fmt(d.created)), el("td", {}, d.delivered ? fmt(d.delivered) : (d.nextAttempt ? "next " + fmt(d.nextAttempt) : ""))));
  box.replaceChildren(...parts, tbl);
}

// Instances whose agent streamed no output (the official CodeDeploy
// agent does not know PutHookLog) get, once they are done, each lifecycle
// event's diagnostics and the log tail it sends for a failed hook.
function unstreamedTargets() {
  if (!S.state || !S.streamed) return [];
  const inst = ($("log-instance") || {}).value;
  const done = ["Succeeded", "Failed", "Skipped", "Ready"];
  return (S.state.targets || []).map((t) => t.instanceTarget).filter(Boolean)
    .filter((t) => !S.streamed.has(t.targetId) && (!inst || t.targetId === inst) && done.includes(t.status) && (t.lifecycleEvents || []).length);
}

function renderUnstreamed() {
  const box = $("logs-unstreamed");
  if (!box) return;
  const ts = unstreamedTargets();
  if (!ts.length) { box.replaceChildren(); return; }
  const noOutput = $("logs").querySelector("p.muted");
  if (noOutput) noOutput.hidden = true;
  box.replaceChildren(el("p", { class: "muted", id: "unstreamed-note" }, "No streamed output from " + ts.map((t) => t.targetId).join(", ") +
    ": its agent does not stream hook output (the official CodeDeploy agent does not). Each lifecycle event's diagnostics and log tail instead:"),
  ...ts.map((t) => el("div", { class: "log unstreamed", "data-instance": t.targetId }, el("b", {}, t.targetId),
    (t.lifecycleEvents || []).map((e) => {
      const dg = e.diagnostics || {};
      return el("div", { class: "event-diag", "data-event": e.lifecycleEventName }, e.lifecycleEventName + " · ", statusSpan(e.status),
        dg.errorCode && dg.errorCode !== "Success" ? " · " + dg.errorCode : null, dg.scriptName ? " · script " + dg.scriptName : null,
        dg.message && dg.message !== e.status ? " · " + dg.message : null, dg.logTail ? el("pre", {}, dg.logTail) : null);
    }))));
}

function renderLogs(logs) {
  const box = $("logs");
  S.streamed = new Set(logs.map((l) => l.instance));
  renderUnstreamed();
  if (!logs.length) { box.replaceChildren(el("p", { class: "muted", hidden: unstreamedTargets().length > 0 }, "No output yet.")); return; }
  box.replaceChildren(...logs.map((l) => el("div", { class: "log", "data-instance": l.instance, "data-event": l.event },
    el("b", {}, l.instance + " · " + l.event), l.truncated ? el("span", { class: "error" }, " (truncated at 1 MiB)") : null,
    l.omitted ? el("p", { class: "muted" }, "Too much output to show at once: choose this instance above.") : el("pre", {}, l.text))));
}

function tick() {
  const st = S.state; if (!st) return;
  const w = st.waits || {};
  const d = st.deployment || {};
  let due = null, what = "";
  if (w.phase === "ready" && w.readyDeadline) { due = Date.parse(w.readyDeadline); what = "until the Ready wait ends"; }
  else if (w.phase === "termination" && w.terminationDue) { due = Date.parse(w.terminationDue); what = "until the original instances are terminated"; }
  const c = $("countdown"); if (!c) return;
  if (due === null || ["Succeeded", "Failed", "Stopped"].includes(d.status)) { c.textContent = "–"; return; }
  const left = Math.max(0, due - (Date.now() - (S.skew || 0)));
  const s = Math.floor(left / 1000);
  c.textContent = Math.floor(s / 3600) + "h " + String(Math.floor(s / 60) % 60).padStart(2, "0") + "m " + String(s % 60).padStart(2, "0") + "s " + what;
}

async function act(kind) {
  const st = S.state; if (!st) return;
  const d = st.deployment;
  const out = $("action-result");
  // Said at once, so that a person (and a test) can tell a request that
  // is on its way from a click that never happened.
  out.className = "muted";
  out.textContent = kind === "continue" ? "Continuing…" : "Stopping…";
  try {
    if (kind === "continue") {
      const wait = d.status === "Ready" ? "READY_WAIT" : "TERMINATION_WAIT";
      await api("ContinueDeployment", { deploymentId: d.deploymentId, deploymentWaitType: wait });
      out.textContent = "Continued (" + wait + ").";
    } else {
      const r = await api("StopDeployment", { deploymentId: d.deploymentId, autoRollbackEnabled: kind === "rollback" });
      out.textContent = "Stop: " + r.status + (r.statusMessage ? " – " + r.statusMessage : "");
    }
  } catch (e) { out.textContent = e.message; out.className = "error"; }
}

async function route() {
  stopLive();
  if (!S.session) return;
  const h = location.hash || "#/";
  const [path, q] = h.slice(1).split("?");
  const params = Object.fromEntries(new URLSearchParams(q || ""));
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  try {
    if (parts[0] === "app" && parts[1]) await application(parts[1], params);
    else if (parts[0] === "deployment" && parts[1]) await deployment(parts[1]);
    else await applications();
  } catch (e) {
    if (e.message !== "signed out") setMain(el("div", { class: "card error", id: "page-error" }, e.message));
  }
}

window.addEventListener("hashchange", route);
(async () => {
  const r = await fetch("/ui/session", { credentials: "same-origin" });
  if (r.ok) signedIn(await r.json()); else showLogin();
})();
