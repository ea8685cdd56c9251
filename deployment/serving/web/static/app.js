// News Reader's web page: analyse articles through POST /score, give feedback, browse the history and dashboard.
// Plain browser JavaScript with no dependencies, so the page works offline.
"use strict";

const KEY_STORAGE = "news-reader-api-key";
const FEEDBACK_ATTEMPTS = 3;
// Answers that say the server could not store the feedback now (the database is busy or down): worth a retry.
const RETRIED_STATUSES = new Set([502, 503, 504]);
const notice = document.getElementById("notice");

/** The server did not answer at all: it is down, or the answer was lost on the way. */
class Unreachable extends Error {}

function showNotice(message) {
  notice.textContent = message;
  notice.hidden = !message;
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  const key = sessionStorage.getItem(KEY_STORAGE);
  if (key) headers.Authorization = `Bearer ${key}`;
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (error) {
    throw new Unreachable("The News Reader server cannot be reached. Is it running?");
  }
  if (response.status === 401) {
    document.getElementById("api-key").hidden = false;
    throw new Error("This server needs an API key: enter it at the top of the page.");
  }
  return response;
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body.error && body.error.message) return body.error.message;
  } catch (error) {
    // Not our JSON error body: fall back to the status line.
  }
  return `the server answered ${response.status} ${response.statusText}`;
}

async function setUpApiKey() {
  const form = document.getElementById("api-key");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORAGE, form.elements.key.value.trim());
    form.elements.key.value = "";
    showNotice("");
    form.hidden = true;
    if (document.body.dataset.page !== "analyze") location.reload();
  });
  try {
    const openapi = await (await fetch("/openapi.json")).json();
    if (openapi.paths["/score"].post.security && !sessionStorage.getItem(KEY_STORAGE)) form.hidden = false;
  } catch (error) {
    showNotice("The News Reader server cannot be reached. Is it running?");
  }
}

// ---- Analyse ----

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function markQuotes(container, article, quotes) {
  // Quotes are verbatim from the article as the server prepared it (Unicode NFC, spacing normalised), so compare
  // in NFC and match across any whitespace.
  article = article.normalize("NFC");
  const patterns = quotes.filter(Boolean)
    .map((q) => q.normalize("NFC").trim().split(/\s+/).map(escapeRegExp).join("\\s+"));
  const found = patterns.length ? new RegExp(patterns.join("|"), "g") : null;
  let last = 0;
  for (const match of found ? article.matchAll(found) : []) {
    container.append(article.slice(last, match.index), element("mark", match[0]));
    last = match.index + match[0].length;
  }
  container.append(article.slice(last));
}

/** The direction's calibrated probability as a percentage; "n/a" where the LLM server gave no log-probabilities. */
function confidenceText(confidence) {
  return confidence === null || confidence === undefined ? "n/a" : `${Math.round(confidence * 100)}%`;
}

function renderResult(card, article, result, seconds) {
  card.querySelector(".status").textContent = `Done in ${seconds} s`;
  card.querySelector(".title").textContent = result.title;
  card.querySelector(".summary").textContent = result.summary;
  card.querySelector(".business").textContent = result.is_about_business
    ? "About business: yes" : "About business: no (no company analysis)";
  const table = card.querySelector(".companies");
  const rows = table.querySelector("tbody");
  for (const company of result.business_info) {
    const row = element("tr");
    row.append(element("td", company.business));
    row.append(element("td", company.stock_price_change, `direction ${company.stock_price_change}`));
    row.append(element("td", confidenceText(company.confidence), "confidence"));
    const reason = element("td", company.reason);
    reason.append(element("blockquote", company.relevant_substring));
    row.append(reason);
    const choice = element("select");
    choice.name = "correction";
    choice.dataset.business = company.business;
    choice.setAttribute("aria-label", `Correct direction for ${company.business}`);
    for (const [value, label] of [["", "(keep)"], ["increase", "increase"], ["decrease", "decrease"],
      ["none", "none"]]) {
      const option = element("option", label);
      option.value = value;
      choice.append(option);
    }
    const cell = element("td");
    cell.append(choice);
    row.append(cell);
    rows.append(row);
  }
  table.hidden = result.business_info.length === 0;
  markQuotes(card.querySelector(".article-text .text"), article,
    result.business_info.map((c) => c.relevant_substring));
  for (const error of result.errors) {
    card.querySelector(".business").append(element("span", ` · ${error.business || error.step}: ${error.message}`,
      "step-error"));
  }
  const tokens = result.usage.reduce((sum, u) => [sum[0] + u.prompt_tokens, sum[1] + u.completion_tokens], [0, 0]);
  const stored = result.stored !== false;
  card.querySelector(".meta").textContent = `trace ${result.trace_id}${stored ? "" : " (not saved)"} · ` +
    `${tokens[0]} prompt + ${tokens[1]} completion tokens`;
  card.querySelector(".body").hidden = false;
  if (stored) setUpFeedback(card, result.trace_id);
  else withoutFeedback(card);
}

/** The server could not store this analysis, so it would refuse feedback on it: say so instead of the form. */
function withoutFeedback(card) {
  const form = card.querySelector(".feedback");
  form.hidden = true;
  form.after(element("p", "This analysis could not be saved, so it cannot take feedback. Analyse the article again " +
    "to rate it.", "feedback-unavailable step-error"));
  card.querySelectorAll("select[name=correction]").forEach((select) => { select.disabled = true; });
}

/** A new Idempotency-Key: 128 random bits in hex (crypto.randomUUID would need an HTTPS page). */
function newIdempotencyKey() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** POST /feedback, sent again with the same key when the answer is lost or the database is briefly unavailable:
 * the server stores a submission once however often it arrives. */
async function postFeedback(body, key) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      const response = await api("/feedback", {
        method: "POST", headers: { "Content-Type": "application/json", "Idempotency-Key": key }, body,
      });
      if (!RETRIED_STATUSES.has(response.status) || attempt === FEEDBACK_ATTEMPTS) return response;
    } catch (error) {
      if (!(error instanceof Unreachable) || attempt === FEEDBACK_ATTEMPTS) throw error;
    }
    await new Promise((resolve) => { setTimeout(resolve, 1000 * attempt); });
  }
}

function setUpFeedback(card, traceId) {
  const form = card.querySelector(".feedback");
  const status = form.querySelector(".feedback-status");
  // The last submission, so that sending the same feedback again after a failure reuses its key.
  let submission = null;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const rating = form.elements.rating.value;
    if (!rating) {
      status.textContent = "Choose 👍 or 👎 first.";
      return;
    }
    const corrections = [...card.querySelectorAll("select[name=correction]")]
      .filter((select) => select.value)
      .map((select) => ({ business: select.dataset.business, stock_price_change: select.value }));
    const comment = form.elements.comment.value.trim();
    const body = JSON.stringify({ trace_id: traceId, rating, corrections, ...(comment ? { comment } : {}) });
    if (!submission || submission.body !== body) submission = { body, key: newIdempotencyKey() };
    status.textContent = "Sending…";
    try {
      const response = await postFeedback(submission.body, submission.key);
      if (!response.ok) throw new Error(`Feedback not saved: ${await errorMessage(response)}`);
      status.textContent = "Thank you: your feedback is saved.";
      form.querySelector("fieldset").disabled = true;
      card.querySelectorAll("select[name=correction]").forEach((select) => { select.disabled = true; });
    } catch (error) {
      status.textContent = error.message;
    }
  });
}

function newCard(source) {
  const card = document.getElementById("result-template").content.firstElementChild.cloneNode(true);
  card.querySelector(".source").textContent = source;
  card.querySelector(".status").textContent = "Waiting…";
  document.getElementById("results").prepend(card);
  return card;
}

async function analyse(card, article) {
  const status = card.querySelector(".status");
  const started = Date.now();
  const seconds = () => Math.round((Date.now() - started) / 1000);
  status.textContent = "Analysing… 0 s";
  const timer = setInterval(() => { status.textContent = `Analysing… ${seconds()} s`; }, 1000);
  try {
    const response = await api("/score", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ article }),
    });
    if (!response.ok) throw new Error(`Could not analyse: ${await errorMessage(response)}`);
    renderResult(card, article, await response.json(), seconds());
  } catch (error) {
    status.textContent = error.message;
    card.classList.add("failed");
  } finally {
    clearInterval(timer);
  }
}

async function readText(file) {
  // News text comes as UTF-8 or Windows-1252, as the server's own reader expects.
  const bytes = await file.arrayBuffer();
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (error) {
    return new TextDecoder("windows-1252").decode(bytes);
  }
}

function setUpAnalyse() {
  const form = document.getElementById("analyze-form");
  const maxFileBytes = Number(form.dataset.maxFileBytes);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const jobs = [];
    const pasted = form.elements.article.value;
    if (pasted.trim()) jobs.push({ card: newCard("Pasted article"), read: async () => pasted });
    for (const file of form.elements.files.files) {
      const card = newCard(file.name);
      if (file.size > maxFileBytes) {
        card.querySelector(".status").textContent =
          `Not sent: ${file.name} has ${file.size.toLocaleString()} bytes; the limit is ${maxFileBytes.toLocaleString()}.`;
        card.classList.add("failed");
        continue;
      }
      jobs.push({ card, read: () => readText(file) });
    }
    if (!jobs.length && !form.elements.files.files.length) {
      showNotice("Paste an article or choose a file first.");
      return;
    }
    showNotice("");
    form.reset();
    // One at a time: the local model answers one request at a time anyway.
    for (const job of jobs) await analyse(job.card, await job.read());
  });
}

// ---- History ----

function feedbackText(feedback) {
  if (!feedback.length) return "none";
  return feedback.map((f) => {
    const corrections = f.corrections.map((c) => `${c.business} → ${c.stock_price_change}`).join(", ");
    return [f.rating === "up" ? "👍" : "👎", f.comment, corrections].filter(Boolean).join(" · ");
  }).join(" | ");
}

async function setUpHistory() {
  const rows = document.querySelector("#history tbody");
  const more = document.getElementById("more");
  const pageSize = 25;
  let offset = 0;
  async function load() {
    try {
      const response = await api(`/api/analyses?limit=${pageSize}&offset=${offset}`);
      if (!response.ok) throw new Error(`Could not load the history: ${await errorMessage(response)}`);
      const analyses = await response.json();
      for (const a of analyses) {
        const row = element("tr");
        const result = a.result || {};
        row.append(element("td", new Date(a.created_at).toLocaleString()));
        row.append(element("td", result.title || `failed: ${a.error_kind}`));
        row.append(element("td", result.is_about_business === undefined ? "" : (result.is_about_business ? "yes" : "no")));
        row.append(element("td", (result.business_info || []).map((c) => `${c.business}: ${c.stock_price_change}`)
          .join(", ")));
        row.append(element("td", a.model));
        row.append(element("td", feedbackText(a.feedback), "feedback"));
        row.append(element("td", a.trace_id, "trace"));
        rows.append(row);
      }
      offset += analyses.length;
      more.hidden = analyses.length < pageSize;
      if (!offset) showNotice("No analyses yet.");
    } catch (error) {
      showNotice(error.message);
    }
  }
  more.addEventListener("click", load);
  await load();
}

// ---- Dashboard ----

async function setUpDashboard() {
  const form = document.getElementById("dashboard-form");
  const chart = document.getElementById("dashboard-chart");
  async function load() {
    try {
      const response = await api(`/api/dashboard.png?bucket=${form.elements.bucket.value}`,
        { headers: { Accept: "image/png" } });
      if (!response.ok) throw new Error(`Could not draw the dashboard: ${await errorMessage(response)}`);
      if (chart.src) URL.revokeObjectURL(chart.src);
      chart.src = URL.createObjectURL(await response.blob());
      chart.hidden = false;
      showNotice("");
    } catch (error) {
      showNotice(error.message);
    }
  }
  form.addEventListener("submit", (event) => { event.preventDefault(); load(); });
  await load();
}

setUpApiKey();
({ analyze: setUpAnalyse, history: setUpHistory, dashboard: setUpDashboard })[document.body.dataset.page]();
