// The web catalog's one script: the data preview and, for owners, the
// usage chart. The browser reads both straight from the owning domain's
// REST API with a token exchanged for the signed-in user, so the domain
// applies that user's agreement, pseudonyms and ownership; every value is
// written as text, never as HTML.
"use strict";

// A token for the product's domain alone (exchanged by the registry).
async function sessionToken(domain) {
  const response = await fetch("/catalog/session/token?domain=" + encodeURIComponent(domain), {
    credentials: "same-origin",
    headers: { "x-mesh-catalog": "1" },
  });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw new Error(body && body.error ? body.error.message : "your session ended; sign in again");
  }
  return body.token;
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function showError(box, message) {
  box.replaceChildren(element("p", message, "preview-error"));
  box.dataset.shownAt = performance.now().toFixed(1);
  box.setAttribute("data-state", "error");
}

// A table of `rows` (arrays of text) under `headings`.
function textTable(id, headings, rows) {
  const table = element("table");
  table.id = id;
  const head = table.createTHead().insertRow();
  for (const heading of headings) {
    const th = element("th", heading);
    th.scope = "col";
    head.appendChild(th);
  }
  const body = table.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    for (const cell of row) tr.insertCell().textContent = cell;
  }
  return table;
}

function showRows(box, rows, withheld) {
  const parts = [];
  if (rows.length === 0) {
    parts.push(element("p", "No rows."));
  } else {
    const columns = Object.keys(rows[0]);
    const text = (value) => (value === null ? "" : String(value));
    parts.push(textTable("preview-table", columns, rows.map((row) => columns.map((column) => text(row[column])))));
  }
  const note = rows.length + " rows shown";
  parts.push(element("p", withheld ? note + "; left out by your agreement: " + withheld.split(",").join(", ") : note, "muted"));
  box.replaceChildren(...parts);
  box.dataset.shownAt = performance.now().toFixed(1);
  box.setAttribute("data-state", "rows");
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// GETs the first of `urls` (a domain's URLs in order of preference) that
// answers, with a token for `domain`: the response and its JSON body.
async function fromDomain(urls, domain) {
  const token = await sessionToken(domain);
  const failures = [];
  for (const url of urls) {
    let response;
    try {
      response = await fetch(url, { headers: { authorization: "Bearer " + token, accept: "application/json" } });
    } catch (error) {
      failures.push(url + " (" + error.message + ")");
      continue;
    }
    try {
      return { response, body: await response.json() };
    } catch (error) {
      throw new Error("The domain answered " + response.status + " without JSON.");
    }
  }
  throw new Error("Could not reach the domain at " + failures.join(", "));
}

// The domain's refusal in words.
function refusal(response, body) {
  const detail = body && body.error ? body.error.status + ": " + body.error.message : "HTTP " + response.status;
  return response.status + " " + detail;
}

// With an agreement just approved, the domain may not have it yet (it
// fetches agreements every few seconds): a refusal is retried a few times.
async function loadPreview(box, retries = box.dataset.agreement === "approved" ? 8 : 0) {
  let answer;
  try {
    answer = await fromDomain(box.dataset.rowsUrls.split(" "), box.dataset.domain);
  } catch (error) {
    showError(box, error.message);
    return;
  }
  const { response, body } = answer;
  if (response.status === 403 && retries > 0) {
    box.replaceChildren(element("p", "Waiting for the domain to receive your agreement…", "muted"));
    await sleep(1000);
    return loadPreview(box, retries - 1);
  }
  if (!response.ok) {
    showError(box, "The domain refused the preview (" + refusal(response, body) + ")");
    return;
  }
  showRows(box, body.rows || [], response.headers.get("mesh-withheld-columns"));
}

const SVG = "http://www.w3.org/2000/svg";

function svgElement(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

// 1234567 -> "1.2 MiB" (bytes) or "1,234,567".
function amount(value, unit) {
  if (unit !== "bytes") return value.toLocaleString("en");
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let scaled = value;
  let index = 0;
  while (scaled >= 1024 && index < units.length - 1) {
    scaled /= 1024;
    index += 1;
  }
  return (index === 0 ? String(scaled) : scaled.toFixed(1)) + " " + units[index];
}

// One bar chart of `key` (reads, rows or bytes) per day, each bar titled
// with its day and value.
function usageChart(days, key, unit) {
  const width = 620;
  const height = 120;
  const left = 70;
  const bottom = 18;
  const values = days.map((day) => Number(day[key] || 0));
  const total = values.reduce((sum, value) => sum + value, 0);
  const top = Math.max(1, ...values);
  const label = unit + " per day, " + amount(total, unit) + " in " + days.length + " days";
  const svg = svgElement("svg", { role: "img", viewBox: "0 0 " + width + " " + height, width, height, class: "usage-chart", id: "usage-" + key });
  svg.appendChild(svgElement("title", {}, label));
  const plotHeight = height - bottom - 4;
  const step = (width - left) / Math.max(1, days.length);
  svg.appendChild(svgElement("text", { x: left - 6, y: 12, "text-anchor": "end", class: "axis" }, amount(top, unit)));
  svg.appendChild(svgElement("text", { x: left - 6, y: height - bottom, "text-anchor": "end", class: "axis" }, "0"));
  svg.appendChild(svgElement("line", { x1: left, y1: height - bottom, x2: width, y2: height - bottom, class: "baseline" }));
  days.forEach((day, index) => {
    const barHeight = (values[index] / top) * plotHeight;
    const bar = svgElement("rect", {
      x: (left + index * step + 1).toFixed(1),
      y: (height - bottom - barHeight).toFixed(1),
      width: Math.max(1, step - 2).toFixed(1),
      height: barHeight.toFixed(1),
      class: "bar",
      "data-day": day.day,
      "data-value": values[index],
    });
    bar.appendChild(svgElement("title", {}, day.day + ": " + amount(values[index], unit) + " " + unit));
    svg.appendChild(bar);
  });
  if (days.length > 0) {
    svg.appendChild(svgElement("text", { x: left, y: height - 4, class: "axis" }, days[0].day));
    svg.appendChild(svgElement("text", { x: width, y: height - 4, "text-anchor": "end", class: "axis" }, days[days.length - 1].day));
  }
  const figure = element("figure");
  figure.appendChild(svg);
  figure.appendChild(element("figcaption", label));
  return figure;
}

function showUsage(box, usage) {
  const days = usage.days || [];
  const parts = [
    usageChart(days, "reads", "reads"),
    usageChart(days, "rows", "rows"),
    usageChart(days, "bytes", "bytes"),
    element("h3", "Refusals by reason"),
  ];
  const refusals = usage.refusals || [];
  if (refusals.length === 0) {
    parts.push(element("p", "No reads refused.", "muted"));
  } else {
    parts.push(textTable("usage-refusals", ["Refused for", "Reads"], refusals.map((r) => [r.reason, amount(Number(r.count), "reads")])));
  }
  parts.push(element("h3", "Slowest reads"));
  const slowest = usage.slowest || [];
  if (slowest.length === 0) {
    parts.push(element("p", "No reads served in this time.", "muted"));
  } else {
    const took = (read) => Math.max(0, Date.parse(read.end_time) - Date.parse(read.start_time));
    parts.push(
      textTable(
        "usage-slowest",
        ["When", "Who", "Took", "Rows", "Filter"],
        slowest.map((read) => [(read.start_time || "").slice(0, 19).replace("T", " ") + " UTC", read.principal, took(read) + " ms", amount(Number(read.rows), "rows"), read.filter]),
      ),
    );
  }
  if (usage.truncated) {
    parts.push(element("p", "The log holds more reads in this time than are weighed: these are the slowest of the newest " + usage.records + ".", "muted"));
  }
  box.replaceChildren(...parts);
  box.setAttribute("data-state", "usage");
}

// The domain sums one usage at a time: a 429 (another owner's page just
// asked) is retried a few times.
async function loadUsage(box, retries = 4) {
  try {
    const { response, body } = await fromDomain(box.dataset.usageUrls.split(" "), box.dataset.domain);
    if (response.status === 429 && retries > 0) {
      await sleep(1000);
      return loadUsage(box, retries - 1);
    }
    if (!response.ok) {
      showError(box, "The domain did not give the usage (" + refusal(response, body) + ")");
      return;
    }
    showUsage(box, body);
  } catch (error) {
    showError(box, error.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const preview = document.getElementById("preview");
  if (preview) loadPreview(preview);
  const usage = document.getElementById("usage");
  if (usage) loadUsage(usage);
});
