"""The web page, served by the same app as the API: analyse articles, give feedback, browse the history and a
dashboard. The pages are shells without data; their scripts call the JSON API with the user's key, if one is set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Blueprint, Flask, Response, render_template, request

from deployment.serving.score_request import RequestRejected
from news_reader.store import Store

# Reachable without the API key: the page shells and their static files.
PAGE_ROUTES = {"web.analyze", "web.history", "web.dashboard", "web.static", "staticweb_blueprint.home"}
# How far back the dashboard looks, per bucket size.
_WINDOW = {"hour": timedelta(days=7), "day": timedelta(days=90)}
# UTF-8 takes at most 4 bytes a character: a file within this size can hold an article within the character limit.
_BYTES_PER_CHAR = 4


def install_web(app: Flask, store: Store, max_chars: int) -> None:
    """Register the pages and the dashboard's chart; `/` replaces Prompt flow's own placeholder page."""
    web = Blueprint("web", __name__, template_folder="web/templates", static_folder="web/static",
                    static_url_path="/web/static")

    @web.get("/analyze")
    def analyze():
        return render_template("analyze.html", page="analyze", max_chars=max_chars,
                               max_file_bytes=max_chars * _BYTES_PER_CHAR)

    @web.get("/history")
    def history():
        return render_template("history.html", page="history")

    @web.get("/dashboard")
    def dashboard():
        return render_template("dashboard.html", page="dashboard")

    @web.get("/api/dashboard.png")
    def dashboard_chart():
        bucket = request.args.get("bucket", "hour")
        if bucket not in ("hour", "day"):
            raise RequestRejected("invalid_request", f"bucket must be hour or day, not {bucket!r}")
        since = datetime.now(UTC) - _WINDOW[bucket]
        # matplotlib: imported for the first chart, not at start.
        from deployment.serving.dashboard import render_dashboard

        return Response(render_dashboard(store.timeseries(bucket, since), bucket), mimetype="image/png")

    app.register_blueprint(web)
    app.view_functions["staticweb_blueprint.home"] = analyze
