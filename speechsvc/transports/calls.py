"""Recent calls over HTTP, for views that open mid-call (the supervisor console, a CRM): ``GET /v1/calls``
(every active and recently ended call, riskiest first) and ``GET /v1/calls/{call_id}`` (one call's state and its
events so far, as the JSON of the protocol; live events then come from ``/v1/calls/{call_id}/events``)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request

from speechsvc.protocol import event_dict
from speechsvc.runtime.engine import Engine

router = APIRouter()


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


@router.get("/v1/calls")
async def list_calls(
    request: Request, active: bool = Query(False, description="only calls in progress")
) -> dict[str, Any]:
    return {"calls": _engine(request).calls.calls(include_ended=not active)}


@router.get("/v1/calls/{call_id}", responses={404: {"description": "No recent call with this id"}})
async def get_call(call_id: str, request: Request) -> dict[str, Any]:
    index = _engine(request).calls
    view = index.get(call_id)
    if view is None:
        raise HTTPException(404, f"no recent call {call_id}")
    return {**view.summary(time.time()), "events": [event_dict(e) for e in index.history(call_id)]}
