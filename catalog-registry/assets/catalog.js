// The web catalog's one script: the data preview. The browser reads the
// first rows straight from the owning domain's REST API with the signed-in
// user's token, so the domain applies that user's agreement and pseudonyms;
// every value is written as text, never as HTML.
"use strict";

// A token for the product's domain alone (exchanged by the registry).
async function sessionToken(domain) {
  const response = await fetch("/catalog/session/token?domain=" + encodeURIComponent(domain), {
    credentials: "same-origin",
    headers: { "x-mesh-catalog": "1" },
  });
  if (!response.ok) throw new Error("your session ended; sign in again");
  return (await response.json()).token;
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

function showRows(box, rows, withheld) {
  const parts = [];
  if (rows.length === 0) {
    parts.push(element("p", "No rows."));
  } else {
    const columns = Object.keys(rows[0]);
    const table = element("table");
    table.id = "preview-table";
    const head = table.createTHead().insertRow();
    for (const column of columns) {
      const th = element("th", column);
      th.scope = "col";
      head.appendChild(th);
    }
    const body = table.createTBody();
    for (const row of rows) {
      const tr = body.insertRow();
      for (const column of columns) {
        const value = row[column];
        tr.insertCell().textContent = value === null ? "" : String(value);
      }
    }
    parts.push(table);
  }
  const note = rows.length + " rows shown";
  parts.push(element("p", withheld ? note + "; left out by your agreement: " + withheld.split(",").join(", ") : note, "muted"));
  box.replaceChildren(...parts);
  box.dataset.shownAt = performance.now().toFixed(1);
  box.setAttribute("data-state", "rows");
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// With an agreement just approved, the domain may not have it yet (it
// fetches agreements every few seconds): a refusal is retried a few times.
async function loadPreview(box, retries = box.dataset.agreement === "approved" ? 8 : 0) {
  // The domain's URLs in order of preference: the first that answers is used.
  const urls = box.dataset.rowsUrls.split(" ");
  let response;
  let token;
  try {
    token = await sessionToken(box.dataset.domain);
  } catch (error) {
    showError(box, error.message);
    return;
  }
  const failures = [];
  for (const url of urls) {
    try {
      response = await fetch(url, { headers: { authorization: "Bearer " + token, accept: "application/json" } });
      break;
    } catch (error) {
      failures.push(url + " (" + error.message + ")");
    }
  }
  if (!response) {
    showError(box, "Could not reach the domain at " + failures.join(", "));
    return;
  }
  let body = null;
  try {
    body = await response.json();
  } catch (error) {
    showError(box, "The domain answered " + response.status + " without JSON.");
    return;
  }
  if (response.status === 403 && retries > 0) {
    box.replaceChildren(element("p", "Waiting for the domain to receive your agreement…", "muted"));
    await sleep(1000);
    return loadPreview(box, retries - 1);
  }
  if (!response.ok) {
    const detail = body && body.error ? body.error.status + ": " + body.error.message : "HTTP " + response.status;
    showError(box, "The domain refused the preview (" + response.status + " " + detail + ")");
    return;
  }
  showRows(box, body.rows || [], response.headers.get("mesh-withheld-columns"));
}

document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("preview");
  if (box) loadPreview(box);
});
