// The service's web page: ADQL editor, schema browser, sync and async queries, DataLink light
// curves. Plain JavaScript against the service's own IVOA documents; no libraries, no build.
"use strict";

const TAP = document.querySelector('meta[name="tap-base"]').content.replace(/\/$/, "");
const TOKEN_KEY = "tap-service-token";
const FINAL_PHASES = new Set(["COMPLETED", "ERROR", "ABORTED", "ARCHIVED"]);
const $ = (id) => document.getElementById(id);

const state = {
  authRequired: false,
  formats: [],          // [{value, label, mime}] from /capabilities
  examples: [],         // [{name, description, query}] from /examples
  result: null,         // {fields, rows, descriptors, overflow}
  page: 0,
  lastQuery: null,      // {query, maxrec} of the rows on show
  errorRange: null,     // [start, end] of the marked ADQL error
  jobs: new Map(),      // job id → {url, query, maxrec, phase, cells of its row}
  lightCurve: null,     // {descriptor, row}
};

// ---------------------------------------------------------------------------------------------
// HTTP: every request carries the token (when there is one); a 401 asks for one and retries once.

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

async function api(url, options = {}, retried = false) {
  const headers = new Headers(options.headers || {});
  const current = token();
  if (current) headers.set("Authorization", `Bearer ${current}`);
  // With a token, credentials "omit": the Bearer header is the credential, and a 401 (whose
  // Basic challenge is meant for TOPCAT) must come back to the page instead of opening the
  // browser's login box. Without one, the browser's own (an ingress's session cookie) go along.
  const credentials = current ? "omit" : "same-origin";
  const response = await fetch(url, { ...options, headers, credentials });
  if (response.status === 401 && !retried) {
    const message = current ? "The service refused this token; enter another." : "";
    if (await askToken(message)) return api(url, options, true);
  }
  return response;
}

function xml(text) {
  return new DOMParser().parseFromString(text, "application/xml");
}

function all(node, name) {
  return Array.from(node.getElementsByTagNameNS("*", name));
}

function child(node, name) {
  return Array.from(node.children).find((el) => el.localName === name) || null;
}

function childText(node, name) {
  const found = child(node, name);
  return found ? found.textContent.trim() : "";
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "className") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const item of children) if (item !== null && item !== undefined) node.append(item);
  return node;
}

// ---------------------------------------------------------------------------------------------
// Token prompt (TAP_AUTH__MODE=tokens): asked once per tab, kept in sessionStorage.

let tokenWaiters = null;

function askToken(message = "") {
  const dialog = $("token-dialog");
  $("token-error").hidden = !message;
  $("token-error").textContent = message;
  if (!tokenWaiters) {
    tokenWaiters = [];
    $("token-input").value = "";
    dialog.showModal();
    $("token-input").focus();
  }
  return new Promise((resolve) => tokenWaiters.push(resolve));
}

function settleToken(value) {
  const dialog = $("token-dialog");
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  if (dialog.open) dialog.close();
  const waiters = tokenWaiters || [];
  tokenWaiters = null;
  showAuthStatus();
  for (const resolve of waiters) resolve(Boolean(value));
}

function showAuthStatus() {
  $("auth-status").hidden = !(state.authRequired || token());
  $("auth-text").textContent = token() ? "Token set for this tab" : "No token set";
  $("token-change").textContent = token() ? "Change token" : "Enter token";
}

function setUpTokenDialog() {
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token-input").value.trim();
    if (value) settleToken(value);
  });
  $("token-cancel").addEventListener("click", () => settleToken(null));
  $("token-dialog").addEventListener("cancel", (event) => {
    event.preventDefault();
    settleToken(null);
  });
  $("token-change").addEventListener("click", () => askToken());
}

// ---------------------------------------------------------------------------------------------
// Capabilities: output formats, and whether the TAP interfaces need credentials.

async function loadCapabilities() {
  const response = await api(`${TAP}/capabilities`);
  const doc = xml(await response.text());
  for (const capability of all(doc, "capability")) {
    if (capability.getAttribute("standardID") !== "ivo://ivoa.net/std/TAP") continue;
    const interfaces = all(capability, "interface");
    state.authRequired = interfaces.length > 0 && interfaces.every(
      (item) => all(item, "securityMethod").some((method) => method.getAttribute("standardID")));
    state.formats = all(capability, "outputFormat").map((format) => {
      const mime = childText(format, "mime");
      const aliases = all(format, "alias").map((alias) => alias.textContent.trim());
      return { value: aliases[0] || mime, label: aliases[0] || mime, mime };
    });
  }
  showAuthStatus();
  if (state.authRequired && !token()) await askToken();
}

// ---------------------------------------------------------------------------------------------
// Examples: the DALI examples document (XHTML with RDFa properties name / query).

async function loadExamples() {
  const response = await api(`${TAP}/examples`);
  const doc = new DOMParser().parseFromString(await response.text(), "text/html");
  state.examples = Array.from(doc.querySelectorAll('[typeof="example"]')).map((node) => ({
    name: (node.querySelector('[property="name"]')?.textContent || node.id).trim(),
    description: (node.querySelector('[property="description"]')?.textContent || "").trim(),
    query: (node.querySelector('[property="query"]')?.textContent || "").trim(),
  })).filter((example) => example.query);
  const select = $("example-select");
  state.examples.forEach((example, index) => {
    select.append(el("option", { value: String(index), text: example.name }));
  });
}

function selectedExample() {
  const value = $("example-select").value;
  return value === "" ? null : state.examples[Number(value)];
}

function setUpExamples() {
  const select = $("example-select");
  select.addEventListener("change", () => {
    const example = selectedExample();
    $("example-load").disabled = !example;
    $("example-description").textContent = example ? example.description : "";
  });
  $("example-load").addEventListener("click", () => {
    const example = selectedExample();
    if (example) replaceQuery(example.query);
  });
}

// ---------------------------------------------------------------------------------------------
// Editor: a textarea with line numbers, a caret position, and a backdrop marking ADQL errors.

function replaceQuery(text) {
  const editor = $("editor");
  editor.focus();
  editor.select();
  // insertText keeps the browser's undo history; the assignment is the fallback.
  if (!document.execCommand || !document.execCommand("insertText", false, text)) {
    editor.value = text;
  }
  editor.setSelectionRange(0, 0);
  editor.scrollTop = 0;
  clearError();
  refreshEditor();
}

function caretPosition(text, offset) {
  const before = text.slice(0, offset).split("\n");
  return { line: before.length, column: before[before.length - 1].length + 1 };
}

function offsetOf(text, line, column) {
  const lines = text.split("\n");
  let offset = 0;
  for (let index = 0; index < Math.min(line - 1, lines.length - 1); index++) {
    offset += lines[index].length + 1;
  }
  const current = lines[Math.min(line, lines.length) - 1] || "";
  return offset + Math.min(Math.max(column - 1, 0), current.length);
}

function refreshEditor() {
  const editor = $("editor");
  const text = editor.value;
  const lineCount = text.split("\n").length;
  const errorLine = state.errorRange ? caretPosition(text, state.errorRange[0]).line : 0;
  const gutter = $("gutter");
  if (gutter.childElementCount !== lineCount || gutter.dataset.errorLine !== String(errorLine)) {
    gutter.replaceChildren(...Array.from({ length: lineCount }, (_, index) =>
      el("div", { text: String(index + 1), className: index + 1 === errorLine ? "error-line" : "" })));
    gutter.dataset.errorLine = String(errorLine);
  }
  const backdrop = $("backdrop");
  if (state.errorRange) {
    const [start, end] = state.errorRange;
    backdrop.replaceChildren(
      text.slice(0, start),
      el("mark", { className: "error-mark", text: text.slice(start, end) || " " }),
      text.slice(end) + "\n");
  } else {
    backdrop.textContent = text + "\n";
  }
  syncScroll();
  showCaret();
}

function syncScroll() {
  const editor = $("editor");
  $("backdrop").scrollTop = editor.scrollTop;
  $("backdrop").scrollLeft = editor.scrollLeft;
  $("gutter").scrollTop = editor.scrollTop;
}

function showCaret() {
  const editor = $("editor");
  const { line, column } = caretPosition(editor.value, editor.selectionStart);
  $("editor-position").textContent = `Line ${line}, column ${column}`;
}

function setUpEditor() {
  const editor = $("editor");
  editor.addEventListener("input", () => {
    if (state.errorRange) clearError();
    refreshEditor();
  });
  editor.addEventListener("scroll", syncScroll);
  for (const name of ["keyup", "click", "select", "focus"]) editor.addEventListener(name, showCaret);
  document.addEventListener("selectionchange", () => {
    if (document.activeElement === editor) showCaret();
  });
  editor.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      runSync();
    }
  });
  refreshEditor();
}

// ---------------------------------------------------------------------------------------------
// Errors: DALI error documents; ADQL errors name a LINE and COLUMN, marked in the editor.

function readError(text, status, fallback = "") {
  const infos = text ? all(xml(text), "INFO") : [];
  const find = (name) => infos.find((info) => info.getAttribute("name") === name);
  const statusInfo = find("QUERY_STATUS");
  let message = statusInfo ? statusInfo.textContent.trim() : fallback;
  if (!message) message = `The service answered HTTP ${status}`;
  let line = Number(find("LINE")?.getAttribute("value"));
  let column = Number(find("COLUMN")?.getAttribute("value"));
  if (!line) {
    const match = /line (\d+),? column (\d+)/i.exec(message);
    if (match) [line, column] = [Number(match[1]), Number(match[2])];
  }
  return { message, line: line || null, column: column || 1 };
}

function showError(error) {
  const box = $("query-error");
  box.hidden = false;
  const named = /line \d+,? column \d+/i.test(error.message);
  const where = error.line && !named ? `Line ${error.line}, column ${error.column}: ` : "";
  $("query-error-text").textContent = where + error.message;
  $("query-error-show").hidden = !error.line;
  if (!error.line) {
    state.errorRange = null;
    refreshEditor();
    return;
  }
  const editor = $("editor");
  const text = editor.value;
  const start = offsetOf(text, error.line, error.column);
  const found = /found '([^']+)'/.exec(error.message);
  let length = 0;
  if (found && text.startsWith(found[1], start)) length = found[1].length;
  else length = (/^[\w$]+|^\S/.exec(text.slice(start)) || [""])[0].length;
  state.errorRange = [start, start + Math.max(length, 1)];
  refreshEditor();
  markError();
}

function markError() {
  if (!state.errorRange) return;
  const editor = $("editor");
  editor.focus();
  editor.setSelectionRange(state.errorRange[0], state.errorRange[1]);
  // Bring the marked line into view: line height times the line number, roughly centred.
  const { line } = caretPosition(editor.value, state.errorRange[0]);
  const lineHeight = parseFloat(getComputedStyle(editor).lineHeight) || 20;
  editor.scrollTop = Math.max(0, (line - 3) * lineHeight);
  syncScroll();
  showCaret();
}

function clearError() {
  state.errorRange = null;
  $("query-error").hidden = true;
  refreshEditor();
}

// ---------------------------------------------------------------------------------------------
// VOTable (TABLEDATA) reading: fields, rows, query status, DataLink service descriptors.

function readVotable(text) {
  const doc = xml(text);
  if (doc.getElementsByTagName("parsererror").length) throw new Error("The answer is not XML");
  const resources = all(doc, "RESOURCE");
  const results = resources.find((res) => res.getAttribute("type") === "results") || resources[0];
  // A second QUERY_STATUS after the table says OVERFLOW when MAXREC cut the rows.
  const statuses = all(results, "INFO")
    .filter((info) => info.getAttribute("name") === "QUERY_STATUS")
    .map((info) => info.getAttribute("value"));
  const table = all(results, "TABLE")[0];
  const fields = table ? all(table, "FIELD").map((field) => ({
    name: field.getAttribute("name"),
    id: field.getAttribute("ID"),
    unit: field.getAttribute("unit") || "",
    ucd: field.getAttribute("ucd") || "",
    datatype: field.getAttribute("datatype") || "",
    description: childText(field, "DESCRIPTION"),
  })) : [];
  const rows = table ? all(table, "TR").map((tr) =>
    Array.from(tr.children).filter((td) => td.localName === "TD").map((td) => td.textContent)) : [];
  const descriptors = resources
    .filter((res) => res.getAttribute("type") === "meta" && res.getAttribute("utype") === "adhoc:service")
    .map((res) => readDescriptor(res, fields))
    .filter(Boolean);
  return {
    fields, rows, descriptors,
    overflow: statuses.includes("OVERFLOW"),
  };
}

function readDescriptor(resource, fields) {
  const params = all(resource, "PARAM");
  const value = (name) => params.find((param) => param.getAttribute("name") === name)?.getAttribute("value");
  const accessURL = value("accessURL");
  const standardID = value("standardID") || "";
  const group = all(resource, "GROUP").find((item) => item.getAttribute("name") === "inputParams");
  if (!accessURL || !group) return null;
  const inputs = all(group, "PARAM").map((param) => {
    const ref = param.getAttribute("ref");
    return {
      name: param.getAttribute("name"),
      value: param.getAttribute("value") || "",
      column: ref ? fields.findIndex((field) => field.id === ref) : -1,
      ref,
      options: all(param, "OPTION").map((option) => option.getAttribute("value")),
    };
  });
  const idInput = inputs.find((input) => input.ref);
  if (!idInput || idInput.column < 0) return null;
  return {
    accessURL, standardID, inputs, idInput,
    description: childText(resource, "DESCRIPTION") || "Service",
    isLightCurve: /timeseries/i.test(standardID),
  };
}

function descriptorUrl(descriptor, row, overrides = {}) {
  const url = new URL(descriptor.accessURL, location.href);
  for (const input of descriptor.inputs) {
    const value = input.column >= 0 ? row[input.column] : (overrides[input.name] ?? input.value);
    if (value !== "") url.searchParams.set(input.name, value);
  }
  for (const [name, value] of Object.entries(overrides)) {
    if (!descriptor.inputs.some((input) => input.name === name)) url.searchParams.set(name, value);
  }
  return url.toString();
}

// ---------------------------------------------------------------------------------------------
// Running queries.

function queryParams(query, maxrec, format) {
  const params = new URLSearchParams({ LANG: "ADQL", QUERY: query });
  if (maxrec !== "") params.set("MAXREC", maxrec);
  if (format) params.set("RESPONSEFORMAT", format);
  return params;
}

function currentQuery() {
  // Sent as written (not trimmed), so that error positions match the editor's lines.
  return { query: $("editor").value, maxrec: $("maxrec").value.trim() };
}

function setBusy(busy) {
  for (const id of ["run-sync", "run-async"]) $(id).setAttribute("aria-disabled", String(busy));
  $("results").setAttribute("aria-busy", String(busy));
}

async function runSync() {
  const { query, maxrec } = currentQuery();
  if (!query.trim()) {
    showError({ message: "The query is empty: write ADQL or choose an example.", line: null });
    return;
  }
  if ($("run-sync").getAttribute("aria-disabled") === "true") return;
  clearError();
  setBusy(true);
  $("results-status").textContent = "Running…";
  const started = performance.now();
  try {
    const response = await api(`${TAP}/sync`, {
      method: "POST",
      body: queryParams(query, maxrec, "votable/td"),
    });
    const text = await response.text();
    if (!response.ok) {
      clearResult();
      showError(readError(text, response.status));
      $("results-status").textContent = "The query failed; see the message above.";
      return;
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    showResult(readVotable(text), { query, maxrec }, `in ${seconds} s`);
  } catch (error) {
    showError({ message: `The request failed: ${error.message}`, line: null });
    $("results-status").textContent = "";
  } finally {
    setBusy(false);
  }
}

async function runAsync() {
  const { query, maxrec } = currentQuery();
  if (!query.trim()) {
    showError({ message: "The query is empty: write ADQL or choose an example.", line: null });
    return;
  }
  clearError();
  const params = queryParams(query, maxrec, "votable/td");
  params.set("PHASE", "RUN");
  try {
    const response = await api(`${TAP}/async`, { method: "POST", body: params });
    const text = await response.text();
    if (!response.ok) {
      showError(readError(text, response.status));
      return;
    }
    const doc = xml(text);
    const id = all(doc, "jobId")[0]?.textContent.trim() || response.url.split("/").pop();
    addJob(id, `${TAP}/async/${id}`, query, maxrec);
  } catch (error) {
    showError({ message: `The request failed: ${error.message}`, line: null });
  }
}

// ---------------------------------------------------------------------------------------------
// Async jobs: one row each, polled until the phase is final; the result is shown when done.

function addJob(id, url, query, maxrec) {
  const phase = el("td", { className: "phase", text: "PENDING" });
  const result = el("td");
  const row = el("tr", {},
    el("td", {}, el("a", { href: url, text: id, "aria-label": `Job ${id} (UWS document)` })),
    phase,
    el("td", { className: "job-query", text: query.replace(/\s+/g, " "), title: query }),
    result);
  $("jobs-table").tBodies[0].prepend(row);
  $("jobs-table").hidden = false;
  $("jobs-empty").hidden = true;
  const job = { id, url, query, maxrec, phase: "PENDING", phaseCell: phase, resultCell: result };
  state.jobs.set(id, job);
  pollJob(job);
}

async function pollJob(job) {
  let delay = 250;
  while (!FINAL_PHASES.has(job.phase)) {
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 3000);
    let doc;
    try {
      const response = await api(job.url);
      if (!response.ok) {
        job.phaseCell.textContent = `HTTP ${response.status}`;
        return;
      }
      doc = xml(await response.text());
    } catch (error) {
      continue;
    }
    job.phase = all(doc, "phase")[0]?.textContent.trim() || job.phase;
    job.phaseCell.textContent = job.phase;
    job.phaseCell.dataset.phase = job.phase;
    if (job.phase === "COMPLETED") {
      const result = all(doc, "result")[0];
      job.resultUrl = result?.getAttributeNS("http://www.w3.org/1999/xlink", "href")
        || `${job.url}/results/result`;
      const button = el("button", {
        type: "button", text: "Show result", "aria-label": `Show the result of job ${job.id}`,
        onclick: () => showJobResult(job),
      });
      job.resultCell.replaceChildren(button, " ",
        el("a", {
          href: job.resultUrl, text: "VOTable", download: `${job.id}.vot`,
          "aria-label": `Download the result of job ${job.id}`, onclick: downloadWithToken,
        }));
      await showJobResult(job);
    } else if (job.phase === "ERROR") {
      const message = all(doc, "message")[0]?.textContent.trim() || "The job failed";
      job.resultCell.textContent = message;
      // An ADQL error of the query still in the editor is marked there, as for /sync.
      if ($("editor").value === job.query) showError(readError("", 0, message));
    }
  }
}

async function showJobResult(job) {
  $("results-status").textContent = `Loading the result of job ${job.id}…`;
  const response = await api(job.resultUrl);
  const text = await response.text();
  if (!response.ok) {
    showError(readError(text, response.status));
    return;
  }
  showResult(readVotable(text), { query: job.query, maxrec: job.maxrec }, `from async job ${job.id}`);
}

// ---------------------------------------------------------------------------------------------
// Results: a paged table, units in the headers, download links, light-curve buttons.

function clearResult() {
  state.result = null;
  for (const id of ["downloads", "table-wrap", "pager", "lightcurve"]) $(id).hidden = true;
  $("results-table").replaceChildren();
}

function showResult(result, source, how) {
  $("lightcurve").hidden = true;
  state.result = result;
  state.lastQuery = source;
  state.page = 0;
  const count = result.rows.length;
  const overflow = result.overflow ? ` (cut at MAXREC=${source.maxrec}; raise it for more)` : "";
  $("results-status").textContent = `${count} row${count === 1 ? "" : "s"} ${how}${overflow}.`;
  renderDownloads(source);
  renderPage();
}

function renderDownloads(source) {
  const nav = $("downloads");
  nav.replaceChildren(el("span", { className: "downloads-label", text: "Download:" }));
  for (const format of state.formats) {
    const href = `${TAP}/sync?${queryParams(source.query, source.maxrec, format.value)}`;
    nav.append(el("a", {
      href, text: format.label, title: format.mime, download: `result.${extension(format.mime)}`,
      "aria-label": `Download as ${format.label} (${format.mime})`, onclick: downloadWithToken,
    }));
  }
  nav.hidden = state.formats.length === 0;
}

function extension(mime) {
  if (mime.includes("votable")) return "vot";
  if (mime.includes("csv")) return "csv";
  if (mime.includes("tab-separated")) return "tsv";
  if (mime.includes("parquet")) return "parquet";
  return "dat";
}

function pageSize() {
  return Number($("page-size").value) || 50;
}

function renderPage() {
  const result = state.result;
  const table = $("results-table");
  const lightCurve = result.descriptors.find((descriptor) => descriptor.isLightCurve);
  const head = el("tr");
  if (lightCurve) head.append(el("th", { scope: "col", text: "Light curve" }));
  for (const field of result.fields) {
    const title = [field.ucd && `UCD ${field.ucd}`, field.description].filter(Boolean).join(" — ");
    head.append(el("th", { scope: "col", title: title || undefined },
      el("span", { className: "col-name", text: field.name }),
      field.unit ? el("span", { className: "col-unit", text: `[${field.unit}]` }) : null));
  }
  const numeric = result.fields.map((field) =>
    /^(short|int|long|float|double|unsignedByte)$/.test(field.datatype));
  const size = pageSize();
  const pages = Math.max(1, Math.ceil(result.rows.length / size));
  state.page = Math.min(state.page, pages - 1);
  const first = state.page * size;
  const body = el("tbody");
  for (const row of result.rows.slice(first, first + size)) {
    const tr = el("tr");
    if (lightCurve) {
      const id = row[lightCurve.idInput.column];
      tr.append(el("td", {}, el("button", {
        type: "button", className: "plot", text: "Plot",
        "aria-label": `Plot the light curve of ${id}`,
        onclick: () => openLightCurve(lightCurve, row),
      })));
    }
    row.forEach((value, index) => tr.append(el("td", { className: numeric[index] ? "num" : "", text: value })));
    body.append(tr);
  }
  table.replaceChildren(el("thead", {}, head), body);
  $("table-wrap").hidden = result.fields.length === 0;
  $("pager").hidden = result.rows.length <= 25;
  $("page-prev").disabled = state.page === 0;
  $("page-next").disabled = state.page >= pages - 1;
  const last = Math.min(first + size, result.rows.length);
  $("page-info").textContent = result.rows.length
    ? `Rows ${first + 1}–${last} of ${result.rows.length} (page ${state.page + 1} of ${pages})` : "";
}

function setUpResults() {
  $("page-prev").addEventListener("click", () => { state.page -= 1; renderPage(); });
  $("page-next").addEventListener("click", () => { state.page += 1; renderPage(); });
  $("page-size").addEventListener("change", () => { state.page = 0; renderPage(); });
  $("run-sync").addEventListener("click", runSync);
  $("run-async").addEventListener("click", runAsync);
  $("query-error-show").addEventListener("click", markError);
}

// Plain links cannot carry a Bearer token: with one set, fetch the file and hand it over.
async function downloadWithToken(event) {
  if (!token()) return;
  event.preventDefault();
  const link = event.currentTarget;
  const response = await api(link.href);
  if (!response.ok) {
    showError(readError(await response.text(), response.status));
    return;
  }
  const blobUrl = URL.createObjectURL(await response.blob());
  const save = el("a", { href: blobUrl, download: link.getAttribute("download") || "result" });
  document.body.append(save);
  save.click();
  save.remove();
  setTimeout(() => URL.revokeObjectURL(blobUrl), 60000);
}

// ---------------------------------------------------------------------------------------------
// Light curves: the DataLink descriptor's service asked for a PNG plot.

async function openLightCurve(descriptor, row, focus = true) {
  state.lightCurve = { descriptor, row };
  const section = $("lightcurve");
  const bandInput = descriptor.inputs.find((input) => input.name === "band");
  const bandSelect = $("lightcurve-band");
  if (bandInput && bandSelect.dataset.filled !== "1") {
    bandSelect.replaceChildren(...bandInput.options.map((option) =>
      el("option", { value: option, text: option, selected: option === bandInput.value })));
    bandSelect.dataset.filled = "1";
  }
  $("lightcurve-band").parentElement.querySelector("label").hidden = !bandInput;
  bandSelect.hidden = !bandInput;
  const overrides = bandInput ? { band: bandSelect.value } : {};
  const id = row[descriptor.idInput.column];
  const img = $("lightcurve-img");
  section.hidden = false;
  $("lightcurve-heading").textContent = `Light curve of ${id}`;
  $("lightcurve-status").textContent = "Loading the plot…";
  $("lightcurve-link").href = descriptorUrl(descriptor, row, { ...overrides, RESPONSEFORMAT: "votable" });
  $("lightcurve-link").setAttribute("download", `lightcurve-${id}.vot`);
  if (focus) {
    section.scrollIntoView({ block: "nearest" });
    $("lightcurve-heading").focus();
  }
  const url = descriptorUrl(descriptor, row, { ...overrides, RESPONSEFORMAT: "image/png" });
  const response = await api(url);
  if (!response.ok) {
    img.hidden = true;
    $("lightcurve-status").textContent = readError(await response.text(), response.status).message;
    return;
  }
  if (img.dataset.blob) URL.revokeObjectURL(img.dataset.blob);
  img.dataset.blob = URL.createObjectURL(await response.blob());
  img.alt = `Light curve of ${id}: flux against time (MJD), band ${overrides.band || "all"}`;
  img.src = img.dataset.blob;
  img.hidden = false;
  $("lightcurve-status").textContent = `${descriptor.description}, band ${overrides.band || "all"}.`;
}

function setUpLightCurve() {
  $("lightcurve-close").addEventListener("click", () => {
    $("lightcurve").hidden = true;
    $("table-wrap").focus();
  });
  $("lightcurve-band").addEventListener("change", () => {
    if (state.lightCurve) openLightCurve(state.lightCurve.descriptor, state.lightCurve.row, false);
  });
  $("lightcurve-link").addEventListener("click", downloadWithToken);
}

// ---------------------------------------------------------------------------------------------
// Schema browser: VOSI tables → schemas → tables → columns; a table's button writes a query.

async function loadTables() {
  const tree = $("schema-tree");
  const response = await api(`${TAP}/tables`);
  if (!response.ok) {
    tree.replaceChildren(el("p", { className: "error-text", text: `Could not read /tables (HTTP ${response.status})` }));
    return;
  }
  const doc = xml(await response.text());
  const schemas = all(doc, "schema");
  tree.replaceChildren(...schemas.map((schema, index) => {
    const tables = Array.from(schema.children).filter((node) => node.localName === "table");
    const name = childText(schema, "name");
    return el("details", { className: "schema-node", open: index === 0 || undefined },
      el("summary", {}, el("span", { className: "schema-name", text: name }),
        el("span", { className: "count", text: ` ${tables.length} table${tables.length === 1 ? "" : "s"}` })),
      schemaDescription(schema),
      el("ul", { className: "tables" }, ...tables.map(tableNode)));
  }));
}

function schemaDescription(schema) {
  const text = childText(schema, "description");
  return text ? el("p", { className: "hint", text }) : null;
}

function tableNode(table) {
  const name = childText(table, "name");
  const description = childText(table, "description");
  const columns = Array.from(table.children).filter((node) => node.localName === "column");
  const item = el("li", { className: "table-node", "data-name": name.toLowerCase(), "data-description": description.toLowerCase() },
    el("button", {
      type: "button", className: "table-button", text: name.split(".").pop(),
      "aria-label": `Write a query on ${name}`, title: `SELECT TOP 100 * FROM ${name}`,
      onclick: () => replaceQuery(`SELECT TOP 100 *\nFROM ${name}`),
    }),
    description ? el("p", { className: "table-description", text: description }) : null,
    el("details", { className: "columns" },
      el("summary", { text: `${columns.length} columns` }),
      el("ul", {}, ...columns.map(columnNode))));
  return item;
}

function columnNode(column) {
  const unit = childText(column, "unit");
  const ucd = childText(column, "ucd");
  const type = childText(column, "dataType");
  const description = childText(column, "description");
  return el("li", { className: "column" },
    el("div", { className: "column-head" },
      el("code", { className: "column-name", text: childText(column, "name") }),
      el("span", { className: "column-type", text: type }),
      unit ? el("span", { className: "column-unit", text: unit }) : null),
    ucd ? el("div", { className: "column-ucd", text: ucd }) : null,
    description ? el("div", { className: "column-description", text: description }) : null);
}

function setUpSchemaFilter() {
  $("schema-filter").addEventListener("input", () => {
    const needle = $("schema-filter").value.trim().toLowerCase();
    for (const item of document.querySelectorAll(".table-node")) {
      item.hidden = Boolean(needle) && !item.dataset.name.includes(needle)
        && !item.dataset.description.includes(needle);
    }
  });
}

// ---------------------------------------------------------------------------------------------

async function start() {
  setUpTokenDialog();
  setUpEditor();
  setUpExamples();
  setUpResults();
  setUpLightCurve();
  setUpSchemaFilter();
  const capabilities = loadCapabilities().catch((error) => {
    $("results-status").textContent = `Could not read the capabilities: ${error.message}`;
  });
  // Examples and tables are anonymous by default: they fill in while the token is asked for.
  await Promise.allSettled([capabilities, loadExamples(), loadTables()]);
  document.body.dataset.ready = "true";
}

start();
