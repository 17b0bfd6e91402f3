"""The dashboard's web application (FastAPI): the page, its static files, a JSON API and
server-sent events. Every answer comes from :class:`~live_bridge.dashboard.service.Dashboard`.

API (times: ISO 8601, naive = UTC, or UTC epoch seconds; errors: ``{"error": message}``
with status 400 bad input, 401 no operator token, 403 wrong token, 404 unknown id,
409 conflict):

==========================================  ===============================================
GET  /api/status                            counts, time span, version
GET  /api/networks                          layers (name, elements), bounds, CRS
GET  /api/networks/{layer}                  one layer as a GeoJSON FeatureCollection
GET  /api/sensors                           sensors with their map position
GET  /api/sensors/{id}                      one sensor
GET  /api/sensors/{id}/series?start&end     measured, simulated, residual over the window
GET  /api/residuals?start&end               hourly residual scores of every sensor
GET  /api/alerts?status=open|acknowledged|all
GET  /api/alerts/{id}
POST /api/alerts/{id}/ack                   operator: {"operator": name} + token
GET  /api/whatif                            last what-if ranking and its proposals
POST /api/whatif                            operator: {"operator", "alert_id"?, "horizon_hours"?}
POST /api/proposals/{id}/approve            operator: {"operator": name} + token
GET  /api/events                            server-sent events: ``update`` on every change
==========================================  ===============================================

The operator token travels as ``Authorization: Bearer TOKEN``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from twin.errors import BadInput

from live_bridge.dashboard.service import Dashboard, DashboardError, NotFound

STATIC = Path(__file__).resolve().parent / "static"
EVENT_POLL_S = 0.5
HEARTBEAT_S = 15.0


def create_app(dashboard: Dashboard, poll_s: float = EVENT_POLL_S) -> FastAPI:
    """The application serving ``dashboard``; ``app.state.stopping`` ends the event streams."""
    app = FastAPI(title="urban-twin operator dashboard", docs_url="/api/docs",
                  openapi_url="/api/openapi.json", redoc_url=None)
    app.state.dashboard = dashboard
    app.state.stopping = threading.Event()

    @app.exception_handler(DashboardError)
    async def _dashboard_error(request: Request, exc: DashboardError):
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.exception_handler(BadInput)
    async def _bad_input(request: Request, exc: BadInput):
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in exc.errors())
        return JSONResponse({"error": f"bad request: {problems}"}, status_code=400)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def call(fn, *args) -> Response:
        # encoded here, in the worker thread: FastAPI's own encoder walks every number of a
        # 500-sensor x 48-hour answer in Python and took most of an update's time
        return await run_in_threadpool(_json_response, fn, *args)

    @app.get("/api/status")
    async def status():
        return await call(dashboard.status)

    @app.get("/api/networks")
    async def networks():
        return await call(dashboard.networks)

    @app.get("/api/networks/{layer}")
    async def network_layer(layer: str):
        return await call(dashboard.network_layer, layer)

    @app.get("/api/sensors")
    async def sensors():
        return await call(dashboard.sensors)

    @app.get("/api/sensors/{sensor_id}")
    async def sensor(sensor_id: str):
        return await call(dashboard.sensor, sensor_id)

    @app.get("/api/sensors/{sensor_id}/series")
    async def series(sensor_id: str, start: str | None = None, end: str | None = None):
        return await call(dashboard.series, sensor_id, start, end)

    @app.get("/api/residuals")
    async def residuals(start: str | None = None, end: str | None = None):
        return await call(dashboard.residuals, start, end)

    @app.get("/api/alerts")
    async def alerts(status: str = "open"):
        return await call(dashboard.alerts, status)

    @app.get("/api/alerts/{alert_id}")
    async def alert(alert_id: str):
        return await call(dashboard.alert, _int_id(alert_id, "alert"))

    @app.post("/api/alerts/{alert_id}/ack")
    async def acknowledge(alert_id: str, request: Request):
        body = await _body(request)
        return await call(dashboard.acknowledge, _int_id(alert_id, "alert"),
                          str(body.get("operator") or ""), _token(request))

    @app.get("/api/whatif")
    async def whatif():
        return await call(dashboard.whatif_state)

    @app.post("/api/whatif")
    async def run_whatif(request: Request):
        body = await _body(request)
        alert_id = body.get("alert_id")
        horizon = body.get("horizon_hours")
        if alert_id is not None and not isinstance(alert_id, int):
            alert_id = _int_id(str(alert_id), "alert")
        if horizon is not None and not isinstance(horizon, (int, float)):
            raise DashboardError(f"horizon_hours: expected a number of hours, got {horizon!r}")
        return await call(dashboard.run_whatif, str(body.get("operator") or ""), _token(request),
                          alert_id, horizon)

    @app.post("/api/proposals/{proposal_id}/approve")
    async def approve(proposal_id: str, request: Request):
        body = await _body(request)
        return await call(dashboard.approve, proposal_id, str(body.get("operator") or ""),
                          _token(request))

    @app.get("/api/events")
    async def events(request: Request):
        return StreamingResponse(_event_stream(request, dashboard, app.state.stopping, poll_s),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.api_route("/api/{rest:path}", methods=["GET", "POST"], include_in_schema=False)
    async def unknown(rest: str):
        raise NotFound(f"unknown endpoint /api/{rest}; see /api/docs for the endpoints")

    return app


async def _event_stream(request: Request, dashboard: Dashboard, stopping: threading.Event,
                        poll_s: float):
    """``update`` events (the new version) whenever the feed, the alerts or an operator
    action changed; a comment line as heartbeat."""
    last: dict[str, Any] | None = None
    quiet_s = 0.0
    yield "retry: 2000\n\n"
    while not stopping.is_set():
        if await request.is_disconnected():
            break
        version = await run_in_threadpool(dashboard.version)
        if version != last:
            last = version
            quiet_s = 0.0
            yield f"event: update\ndata: {json.dumps(version)}\n\n"
        elif quiet_s >= HEARTBEAT_S:
            quiet_s = 0.0
            yield ": heartbeat\n\n"
        await asyncio.sleep(poll_s)
        quiet_s += poll_s


def _json_response(fn, *args) -> Response:
    return Response(json.dumps(fn(*args), separators=(",", ":"), allow_nan=False),
                    media_type="application/json")


def _int_id(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise NotFound(f"unknown {what} {text!r}: {what} ids are whole numbers") from None


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return (value.strip() or None) if scheme.lower() == "bearer" else None


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise DashboardError("request body: expected a JSON object") from None
    if not isinstance(body, dict):
        raise DashboardError("request body: expected a JSON object")
    return body
