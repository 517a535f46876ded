"""The live page of the inference service: ``GET /live`` (HTML) and ``GET /live/state`` (JSON).

The page is one self-contained HTML document with a small inline script (no CDN: the stack runs
without internet). It polls ``/live/state`` every second and draws, per identifier, the last
day of actuals against the one-step-ahead forecasts with the widest band, the live accuracy
against persistence, the coverage per level and the retrain history. The state comes from a
callable (the live loop's ``snapshot``), so this module never imports the service.

With API_TOKEN set, ``/live/state`` (the data) needs the bearer token like ``/predict``; the page
(no data) does not, and takes the token from its URL fragment: ``/live#token=<API_TOKEN>``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from flts.serving.auth import TokenCheck

Snapshot = Callable[[], dict[str, Any]]

#: Points of each series the page draws (a day at 2-minute steps).
PAGE_POINTS = 720


def live_router(snapshot: Snapshot, authorized: TokenCheck | None = None) -> APIRouter:
    """The live routes; ``authorized`` checks the Authorization header of ``/live/state`` (the
    API_TOKEN check of /predict). The page itself holds no data and is served to anyone."""
    router = APIRouter()
    check = authorized or (lambda _header: True)

    # Plain ``def``: FastAPI runs them in its thread pool, so the live loop's lock never
    # blocks the event loop that serves /predict.
    @router.get(
        "/live/state",
        tags=["live"],
        responses={401: {"description": "API token required (API_TOKEN is set)"}},
    )
    def live_state(request: Request) -> Response:
        """Champion, recent actuals and forecasts, live metrics and retrains per identifier."""
        header = request.headers.get("authorization")
        if not check(None if header is None else header.encode("latin-1")):
            return Response(
                orjson.dumps({"detail": "missing or wrong bearer token"}),
                status_code=401,
                media_type="application/json",
                headers={"www-authenticate": "Bearer"},
            )
        state = snapshot()
        for view in state.get("identifiers", {}).values():
            view["actuals"] = view["actuals"][-PAGE_POINTS:]
            view["forecasts"] = view["forecasts"][-PAGE_POINTS:]
        return Response(orjson.dumps(state), media_type="application/json")

    @router.get("/live", response_class=HTMLResponse, tags=["live"])
    def live_page() -> HTMLResponse:
        """The live page (polls /live/state)."""
        return HTMLResponse(PAGE)

    return router


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>FLTS live</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em} h2{font-size:1.1em;margin-top:1.5em}
table{border-collapse:collapse;font-size:.9em} td,th{border:1px solid #ccc;padding:.2em .5em}
.kpi{display:inline-block;margin-right:2em} .kpi b{font-size:1.2em}
svg{background:#fafafa;border:1px solid #ddd}
</style></head><body>
<h1>FLTS live forecasts</h1>
<div id="status">waiting for data...</div>
<div id="series"></div>
<h2>Retrains</h2>
<table id="retrains"><thead><tr><th>requested at</th><th>identifier</th><th>reason</th>
<th>champion</th><th>live MAE</th><th>persistence MAE</th><th>promoted</th></tr></thead>
<tbody></tbody></table>
<script>
"use strict";
const W = 960, H = 280, PAD = 40;
// Identifiers and reasons come from Kafka messages: never insert them as markup.
function esc(v) {
  return String(v).replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;",
    '"': "&quot;", "'": "&#39;"})[c]);
}
function fmt(v) { return v === null || v === undefined ? "-" : Number(v).toPrecision(4); }
function chart(view) {
  const acts = view.actuals, fc = view.forecasts;
  const levels = Object.keys(fc.length ? fc[fc.length - 1] : {})
    .filter(k => k.startsWith("upper_")).map(k => k.slice(6));
  const top = levels.length ? levels.sort((a, b) => b - a)[0] : null;
  const times = acts.map(a => Date.parse(a[0])).concat(fc.map(f => Date.parse(f.ts)));
  const vals = acts.map(a => a[1]).concat(fc.map(f => f.point));
  if (top) { fc.forEach(f => { vals.push(f["lower_" + top]); vals.push(f["upper_" + top]); }); }
  if (!times.length) { return "<p>no points yet</p>"; }
  const t0 = Math.min(...times), t1 = Math.max(...times) || t0 + 1;
  const v0 = Math.min(...vals), v1 = Math.max(...vals);
  const x = t => PAD + (W - 2 * PAD) * (t - t0) / Math.max(1, t1 - t0);
  const y = v => H - PAD - (H - 2 * PAD) * (v - v0) / Math.max(1e-12, v1 - v0);
  const line = pts => pts.map((p, i) => (i ? "L" : "M") + x(p[0]).toFixed(1) + " "
    + y(p[1]).toFixed(1)).join("");
  let band = "";
  if (top && fc.length) {
    const up = fc.map(f => [Date.parse(f.ts), f["upper_" + top]]);
    const lo = fc.map(f => [Date.parse(f.ts), f["lower_" + top]]).reverse();
    band = `<path class="band" d="${line(up)}${line(lo).replace("M", "L")}Z" `
      + `fill="#9ecae1" fill-opacity=".45" stroke="none"/>`;
  }
  const a = line(acts.map(p => [Date.parse(p[0]), p[1]]));
  const f = line(fc.map(p => [Date.parse(p.ts), p.point]));
  return `<svg width="${W}" height="${H}" data-points="${acts.length + fc.length}">${band}`
    + `<path class="actual" d="${a}" fill="none" stroke="#222" stroke-width="1.2"/>`
    + `<path class="forecast" d="${f}" fill="none" stroke="#d62728" stroke-width="1.2"/>`
    + `<text x="${PAD}" y="15" font-size="11">black: actual, red: 1-step forecast`
    + `${top ? ", blue: " + top + "% band" : ""}; ${fmt(v0)} .. ${fmt(v1)}</text></svg>`;
}
function render(state) {
  const ids = Object.keys(state.identifiers);
  document.getElementById("status").textContent =
    ids.length ? `updated ${state.timestamp}` : "no champion yet";
  document.getElementById("series").innerHTML = ids.map(id => {
    const v = state.identifiers[id], m = v.metrics, c = v.champion;
    const cov = Object.entries(m.coverage).map(([l, s]) => `${l}%: ${(100 * s).toFixed(1)}%`)
      .join(", ") || "-";
    return `<h2>${esc(id)}</h2><div>champion <b>${esc(c.model_type)}</b> run ${esc(c.run_id)}</div>`
      + `<div class="kpi">live MAE <b class="mae">${fmt(m.live_mae)}</b></div>`
      + `<div class="kpi">persistence MAE <b>${fmt(m.live_persistence_mae)}</b></div>`
      + `<div class="kpi">coverage <b>${cov}</b></div>`
      + `<div class="kpi">observations <b class="observations">${v.observations}</b></div>`
      + `<div class="kpi">dropped <b>${v.dropped_duplicate + v.dropped_out_of_order}</b></div>`
      + chart(v);
  }).join("");
  document.querySelector("#retrains tbody").innerHTML = state.retrains.map(r =>
    `<tr><td>${esc(r.requested_at)}</td><td>${esc(r.identifier)}</td><td>${esc(r.reason)}</td>`
    + `<td>${esc(r.champion_model_type)} ${esc(r.champion_run_id)}</td><td>${fmt(r.live_mae)}</td>`
    + `<td>${fmt(r.live_persistence_mae)}</td>`
    + `<td>${r.promoted_run_id ? esc(r.promoted_model_type + " " + r.promoted_run_id) : "-"}</td>`
    + `</tr>`).join("");
}
// With API_TOKEN set, open /live#token=<API_TOKEN>: a fragment never reaches the server or
// its logs, and the script sends it as a bearer token.
const token = new URLSearchParams(location.hash.slice(1)).get("token");
const headers = token ? {Authorization: "Bearer " + token} : {};
async function poll() {
  try {
    const resp = await fetch("/live/state", {cache: "no-store", headers: headers});
    if (resp.ok) { render(await resp.json()); }
    else if (resp.status === 401) {
      document.getElementById("status").textContent =
        "this server needs its API token: open /live#token=<API_TOKEN>";
    }
  } catch (e) { document.getElementById("status").textContent = "state unavailable: " + e; }
  setTimeout(poll, 1000);
}
poll();
</script></body></html>
"""
