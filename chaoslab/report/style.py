"""The stylesheet inlined into report.html and index.html, and small HTML helpers they share.

No web font, no external file: the pages open from disk, offline, in any browser.
"""

from __future__ import annotations

import logging
from html import escape

from chaoslab.report.view import VERDICT_COLOURS, verdict_colour

logger = logging.getLogger(__name__)

STATUS_COLOURS = {
    "reopened": "#a40e26",
    "open": "#bc4c00",
    "accepted": "#6e7781",
    "done": "#0550ae",
    "verified": "#1a7f37",
}

_BADGES = "\n".join(
    f".v-{name}{{background:{colour}}}"
    for name, colour in {**VERDICT_COLOURS, **{f"s-{k}": v for k, v in STATUS_COLOURS.items()}}.items()
).replace(".v-s-", ".s-")

CSS = (
    """
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
  color:#24292f;background:#f6f8fa}
main{max-width:1160px;margin:0 auto;padding:20px 24px 40px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:18px;margin:0 0 10px;display:flex;align-items:center;gap:10px;flex-wrap:wrap}
h3{font-size:13px;text-transform:uppercase;letter-spacing:.06em;color:#57606a;margin:18px 0 6px}
code{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eff2f5;
  padding:1px 4px;border-radius:4px;overflow-wrap:anywhere}
a{color:#0550ae}
.meta{color:#57606a;margin:0 0 16px}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:16px 18px;margin:0 0 18px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eaeef2;vertical-align:top}
th{color:#57606a;font-weight:600;background:#f6f8fa}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.badge{display:inline-block;color:#fff;border-radius:999px;padding:1px 10px;font-size:12px;
  font-weight:600;white-space:nowrap;background:#6e7781}
.stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:10px;margin:8px 0 4px}
.stat{border:1px solid #d0d7de;border-radius:6px;padding:8px 10px;background:#fbfcfd}
.stat b{display:block;font-size:20px;font-variant-numeric:tabular-nums}
.stat span{color:#57606a;font-size:12px}
.stat.bad{border-color:#a40e26;background:#fff5f5}
.stat.good{border-color:#1a7f37;background:#f4fbf6}
.charts{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:12px}
figure{margin:0;border:1px solid #eaeef2;border-radius:6px;padding:6px;background:#fff}
figure figcaption{font-size:12px;color:#57606a;padding:2px 4px}
figure.breached{border-color:#d62728}
svg.chart{width:100%;height:auto;display:block}
.nodata{color:#57606a;font-style:italic;padding:20px}
dl{margin:0 0 10px;display:grid;grid-template-columns:max-content 1fr max-content 1fr;gap:4px 14px}
table.hypothesis td:nth-child(3){width:60%}
table.verdicts td:nth-child(-n+7){white-space:nowrap}
table.timeline td:nth-child(-n+3),table.timeline th{white-space:nowrap}
table.timeline td:last-child{width:100%}
.ev-halt,.ev-not-recovered,.ev-error,.ev-refused,.ev-alert-firing{color:#a40e26}
.ev-injected,.ev-alert-pending{color:#bc4c00}
.ev-recovered,.ev-removed{color:#1a7f37}
dt{color:#57606a}
dd{margin:0}
ul.items{list-style:none;padding:0;margin:0}
ul.items li{padding:6px 0;border-bottom:1px solid #eaeef2}
.muted{color:#57606a}
.note{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:8px 12px}
table.trend{width:auto}
.trend td.cell{padding:3px}
.trend th.run{font-size:11px;font-weight:500;text-align:center;line-height:1.2;padding:4px 3px}
.legend{display:flex;flex-wrap:wrap;gap:6px 14px;font-size:12px;color:#57606a;margin:0 0 8px}
.legend .glyph{display:inline-block;width:18px;height:18px;border-radius:3px;color:#fff;text-align:center;
  line-height:18px;font-weight:700;margin-right:5px}
.trend a.cell{display:block;width:24px;height:24px;border-radius:4px;color:#fff;text-align:center;
  line-height:24px;text-decoration:none;font-weight:700}
.trend .none{display:block;width:24px;height:24px;border-radius:4px;background:#eaeef2}
footer{color:#8c959f;font-size:12px;margin-top:24px}
@media (max-width:800px){.charts{grid-template-columns:1fr}dl{grid-template-columns:max-content 1fr}}
"""
    + _BADGES
)


def e(value: object) -> str:
    """Escaped for HTML text and attribute values."""
    return escape(str(value), quote=True)


def verdict_badge(verdict: str) -> str:
    return (
        f"<span class='badge v-{e(verdict)}' style='background:{verdict_colour(verdict)}'>{e(verdict)}</span>"
    )


def status_badge(status: str) -> str:
    colour = STATUS_COLOURS.get(status, "#6e7781")
    return f"<span class='badge s-{e(status)}' style='background:{colour}'>{e(status or 'unknown')}</span>"


def page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{e(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )
