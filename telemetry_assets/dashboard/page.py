"""The dashboard page: figures from `data.gather`, Plotly charts, one self-contained HTML page."""

import html
import json
import math
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from telemetry_assets.dashboard.data import HEATMAP_BUCKET_MINUTES, DashboardData, budget_days
from telemetry_assets.mood.burn_rates import STATES, format_duration
from telemetry_assets.webhooks import slack_unescaped

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATE_COLOURS = {"healthy": "#1a7f37", "degraded": "#b58100", "breaching": "#cf222e"}
# Shown for a figure that does not exist (no traffic, no budget); an en dash, as in print.
MISSING = "\u2013"
# The pulse strip's lines besides the overall one (worst first), where it is read, how often
# the page asks, and where subscribers hold a stream of its changes open.
PULSE_SHOWN = 6
PULSE_PATH = "/api/pulse"
PULSE_REFRESH_MS = 5_000
PULSE_STREAM_PATH = "/api/pulse/stream"
EPISODE_FILL = {"degraded": "rgba(212, 167, 44, 0.25)", "breaching": "rgba(207, 34, 46, 0.22)"}
ANNOTATION_COLOUR = "#8250df"
ANNOTATION_FILL = "rgba(130, 80, 223, 0.10)"


@cache
def plotly_js() -> str:
    """The Plotly bundle shipped inside the plotly package: no CDN, works offline."""
    return get_plotlyjs()


def _number(value: Any) -> str:
    return MISSING if value is None else f"{value:,}"


def _percent(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    return f"{value:.{digits}f}"


def _millis(value: Any) -> str:
    return MISSING if value is None else f"{value:,.0f}"


def _burn(value: Any) -> str:
    return MISSING if value is None else f"{value:.2f}"


def _chart_text(value: Any) -> str:
    """A reference id as a chart shows it: Plotly reads <a>, <b>, <br> and entities in titles,
    tick labels and hover text as markup, so a scenario id could otherwise be a live link."""
    return html.escape(str(value), quote=False)


def _script_json(figure: go.Figure) -> str:
    # JSON inside <script> must not contain "</" (it would end the element).
    return figure.to_json().replace("</", "<\\/")


def _layout(figure: go.Figure, height: int, **layout: Any) -> go.Figure:
    figure.update_layout(
        height=height, margin={"l": 60, "r": 20, "t": 40, "b": 40}, template="plotly_white",
        font={"size": 12},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"},
        **layout,
    )
    return figure


def minute_figure(data: DashboardData) -> go.Figure:
    """Availability minute by minute for the chosen scenario, its SLO, and its episodes shaded."""
    scenario = data.scenario or {}
    minutes = [row["minute"] for row in data.minutes]
    figure = go.Figure()
    figure.add_trace(go.Scattergl(
        x=minutes, y=[row["availability_pct"] for row in data.minutes], mode="lines",
        name="availability %", line={"color": "#0969da", "width": 1.5},
    ))
    figure.add_trace(go.Bar(
        x=minutes, y=[row["failed_requests"] for row in data.minutes], name="failed requests",
        yaxis="y2", marker={"color": "rgba(207, 34, 46, 0.55)"},
    ))
    if scenario.get("slo_target_pct") is not None:
        figure.add_hline(y=scenario["slo_target_pct"], line={"dash": "dash", "color": "#57606a"},
                         annotation_text=f"SLO {scenario['slo_target_pct']:g}%",
                         annotation_position="bottom right")
    for episode in data.episodes:
        if episode.scenario_id == data.scenario_id:
            figure.add_vrect(x0=episode.start, x1=episode.end, line_width=0,
                             fillcolor=EPISODE_FILL[episode.state], layer="below")
    _add_annotation_markers(figure, data)
    return _layout(
        figure, 340,
        title={"text": f"{_chart_text(data.scenario_id)}: availability per minute, "
                       f"{data.selection.day} "
                       "(shaded: breaching / degraded)", "font": {"size": 14}},
        yaxis={"title": "availability %"},
        yaxis2={"title": "failed", "overlaying": "y", "side": "right", "showgrid": False},
        bargap=0,
    )


def _add_annotation_markers(figure: go.Figure, data: DashboardData) -> None:
    """A dotted line at each annotation's start (a band over a range) and a marker at the top of
    the chart whose hover text says what it was, clipped to the day."""
    shown = data.chart_annotations
    if not shown:
        return
    day_start = datetime.combine(data.selection.day, datetime.min.time())
    day_end = day_start + timedelta(days=1)
    starts = [max(row["starts_at"], day_start) for row in shown]
    for row, start in zip(shown, starts, strict=True):
        if row["ends_at"] and row["ends_at"] > start:
            figure.add_vrect(x0=start, x1=min(row["ends_at"], day_end), line_width=0,
                             fillcolor=ANNOTATION_FILL, layer="below")
        figure.add_vline(x=start, line={"dash": "dot", "width": 1, "color": ANNOTATION_COLOUR})
    figure.add_trace(go.Scatter(
        x=starts, y=[1.0] * len(shown), yaxis="y3", mode="markers", name="annotations",
        marker={"symbol": "triangle-down", "size": 11, "color": ANNOTATION_COLOUR},
        customdata=[row["link"] or "" for row in shown],
        hovertext=[_chart_text(f"{row['kind']}: {row['text']} ({row['source']})")
                   for row in shown],
        hoverinfo="text+x",
    ))
    figure.update_layout(yaxis3={"overlaying": "y", "range": [0, 1.05], "visible": False,
                                 "fixedrange": True})


def heatmap_figure(data: DashboardData) -> go.Figure:
    """Every scenario's availability per 10 minutes: incidents show as red streaks."""
    scenario_ids = sorted({row["scenario_id"] for row in data.heatmap}, reverse=True)
    buckets = sorted({row["bucket"] for row in data.heatmap})
    position = {bucket: i for i, bucket in enumerate(buckets)}
    row_of = {scenario: i for i, scenario in enumerate(scenario_ids)}
    z: list[list[float | None]] = [[None] * len(buckets) for _ in scenario_ids]
    for row in data.heatmap:
        z[row_of[row["scenario_id"]]][position[row["bucket"]]] = row["availability_pct"]
    figure = go.Figure(go.Heatmap(
        z=z, x=buckets, y=[_chart_text(scenario) for scenario in scenario_ids], zmin=95, zmax=100,
        colorscale=[[0, "#cf222e"], [0.6, "#f2cc60"], [0.9, "#a6e3a1"], [1, "#1a7f37"]],
        colorbar={"title": {"text": "avail. %"}, "thickness": 12},
        hovertemplate="%{y}<br>%{x}<br>%{z:.3f}%<extra></extra>",
    ))
    return _layout(
        figure, 90 + 15 * max(len(scenario_ids), 1),
        title={"text": f"All scenarios, availability per {HEATMAP_BUCKET_MINUTES} minutes "
                       "(red below 95 %)", "font": {"size": 14}},
        yaxis={"tickfont": {"size": 10}, "automargin": True},
    )


def daily_figure(data: DashboardData) -> go.Figure:
    """The chosen scenario's daily availability over the selected days against its SLO."""
    figure = go.Figure(go.Scatter(
        x=[row["date"] for row in data.daily], y=[row["availability_pct"] for row in data.daily],
        mode="lines+markers", name="availability %", line={"color": "#0969da"},
    ))
    figure.add_trace(go.Scatter(
        x=[row["date"] for row in data.daily], y=[row["slo_target_pct"] for row in data.daily],
        mode="lines", name="SLO", line={"dash": "dash", "color": "#57606a"},
    ))
    return _layout(
        figure, 260,
        title={"text": f"{_chart_text(data.scenario_id)}: availability per day",
               "font": {"size": 14}},
        xaxis={"type": "date", "dtick": 86_400_000, "tickformat": "%b %d"},
    )


@cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    environment.filters.update(number=_number, percent=_percent, millis=_millis, burn=_burn,
                               duration=format_duration, slack_text=slack_unescaped)
    return environment


def render(data: DashboardData, plotly_src: str | None = None) -> str:
    """The page; Plotly is inlined unless `plotly_src` names where the server serves it."""
    figures = {
        "minute_chart": _script_json(minute_figure(data)),
        "heatmap_chart": _script_json(heatmap_figure(data)),
        "daily_chart": _script_json(daily_figure(data)),
    }
    mood_rows = data.mood.worst_first() if data.mood else []
    return _environment().get_template("dashboard.html.j2").render(
        data=data,
        figures=figures,
        plotly_inline=None if plotly_src else plotly_js().replace("</script", "<\\/script"),
        plotly_src=plotly_src,
        mood_rows=mood_rows,
        states=STATES,
        state_colours=STATE_COLOURS,
        budget_days=budget_days(data.policy),
        one_minute=timedelta(minutes=1),
        policy_windows=[format_duration(m) for m in data.policy.window_minutes],
        options_json=json.dumps({"displayModeBar": False, "responsive": True}),
        pulse_shown=PULSE_SHOWN,
        pulse_api=PULSE_PATH,
        pulse_refresh_ms=PULSE_REFRESH_MS,
    )


def render_message(title: str, text: str) -> str:
    """A plain page for when there is nothing to show yet."""
    return _environment().get_template("message.html.j2").render(title=title, text=text)
