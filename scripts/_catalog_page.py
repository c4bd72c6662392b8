"""The catalog as one self-contained HTML file: the data inside it, filters and search in the page's own script.

Why no server and no external asset: the page is opened from a disk or from a presigned link that expires; it
must work offline, and nothing in it may fetch from anywhere (the data of a personal archive stays in the file).
The media go in a `<script type="application/json">` block with every `<`, `>` and `&` escaped, so no file name
or title can close the block or inject markup; the script renders with `textContent` only, never `innerHTML`.
The filters can be set from the address (`catalog.html#camera=HERO9%20Black&q=GX01`), so a filtered view
can be bookmarked.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

_STYLE = """
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin:1.2em 0 .3em;border-bottom:1px solid #ccc}
#filters{display:flex;gap:.6em;flex-wrap:wrap;margin:.8em 0}
table{border-collapse:collapse;width:100%}td,th{padding:.25em .5em;text-align:left;border-bottom:1px solid #eee}
td.num{text-align:right;font-variant-numeric:tabular-nums}.chapters{color:#555;font-size:.9em}
.state-instant,.state-restored{color:#176f2c}.state-restoring{color:#9a6700}.state-archived{color:#555}
"""

_SCRIPT = r"""
(function () {
  const media = JSON.parse(document.getElementById("catalog-data").textContent);
  const $ = (id) => document.getElementById(id);
  const el = (tag, text, cls) => { const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; };
  const size = (n) => { const u = ["B", "KB", "MB", "GB", "TB"]; let i = 0;
    while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; } return n.toFixed(i ? 1 : 0) + " " + u[i]; };
  function options(id, values) {
    const select = $(id);
    [...new Set(values.filter(Boolean))].sort().forEach((v) => { const o = el("option", v); o.value = v;
      select.appendChild(o); });
  }
  options("camera", media.map((m) => m.camera));
  options("type", media.map((m) => m.type));
  options("state", media.map((m) => m.state));
  function month(m) { return m.captured_at ? m.captured_at.slice(0, 7) : "undated"; }
  function text(m) { return [m.media_id, m.filename, m.title, m.camera, ...m.objects.map((o) => o.filename)]
    .filter(Boolean).join(" ").toLowerCase(); }
  function render() {
    const q = $("search").value.trim().toLowerCase(), cam = $("camera").value, typ = $("type").value,
      st = $("state").value;
    const shown = media.filter((m) => (!cam || m.camera === cam) && (!typ || m.type === typ) &&
      (!st || m.state === st) && (!q || text(m).includes(q)));
    const out = $("media"); out.replaceChildren();
    const groups = {};
    shown.forEach((m) => { (groups[month(m)] = groups[month(m)] || []).push(m); });
    Object.keys(groups).sort().reverse().forEach((key) => {
      out.appendChild(el("h2", key + " (" + groups[key].length + ")"));
      const table = el("table"); const head = el("tr");
      ["Captured", "Media", "Type", "Camera", "Size", "Chapters", "Storage", "Now"].forEach((h) =>
        head.appendChild(el("th", h)));
      table.appendChild(head);
      groups[key].forEach((m) => {
        const row = el("tr"); row.className = "medium"; row.dataset.mediaId = m.media_id;
        row.appendChild(el("td", m.captured_at ? m.captured_at.slice(0, 16).replace("T", " ") : "-"));
        row.appendChild(el("td", (m.title || m.filename || m.media_id)));
        row.appendChild(el("td", m.type)); row.appendChild(el("td", m.camera || "-"));
        row.appendChild(el("td", size(m.size), "num"));
        row.appendChild(el("td", m.objects.map((o) => o.filename).join(", "), "chapters"));
        row.appendChild(el("td", m.storage_class));
        const until = m.objects.map((o) => o.restored_until).filter(Boolean)[0];
        row.appendChild(el("td", m.state + (until ? " until " + until : ""), "state-" + m.state));
        table.appendChild(row);
      });
      out.appendChild(table);
    });
    $("count").textContent = shown.length + " of " + media.length + " media, " +
      size(shown.reduce((a, m) => a + m.size, 0));
  }
  // A view can be linked: #q=...&camera=...&type=...&state=... sets the filters when the page opens.
  const FIELDS = { q: "search", camera: "camera", type: "type", state: "state" };
  const wanted = new URLSearchParams(location.hash.slice(1));
  Object.entries(FIELDS).forEach(([param, id]) => { if (wanted.has(param)) $(id).value = wanted.get(param); });
  function remember() {
    const params = new URLSearchParams();
    Object.entries(FIELDS).forEach(([param, id]) => { if ($(id).value) params.set(param, $(id).value); });
    history.replaceState(null, "", "#" + params.toString());
  }
  Object.values(FIELDS).forEach((id) => $(id).addEventListener("input", () => { remember(); render(); }));
  render();
})();
"""


def _embedded(document: Any) -> str:
    """JSON safe inside a script block: no `</script>`, no HTML comment or entity can form."""
    text = json.dumps(document, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(media: Sequence[dict[str, Any]], *, title: str, generated_at: str) -> str:
    """The whole page for `media` (the entries `scripts/catalog.py --json` prints)."""
    heading = html.escape(title)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{heading}</title><style>{_STYLE}</style></head>
<body>
<h1>{heading}</h1>
<p>Generated {html.escape(generated_at)}. <span id="count"></span></p>
<div id="filters">
<input id="search" type="search" placeholder="search names, ids, titles" aria-label="search">
<select id="camera" aria-label="camera"><option value="">every camera</option></select>
<select id="type" aria-label="type"><option value="">every type</option></select>
<select id="state" aria-label="state"><option value="">any state</option></select>
</div>
<div id="media"></div>
<script type="application/json" id="catalog-data">{_embedded(list(media))}</script>
<script>{_SCRIPT}</script>
</body></html>
"""
