"""Recent calls over HTTP, for views that open mid-call (the supervisor console, a CRM): ``GET /v1/calls``
(every active and recently ended call of the caller's tenant, riskiest first; an admin sees every tenant's, or one
with ``?tenant=``) and ``GET /v1/calls/{call_id}`` (one call's state and its events so far, as the JSON of the
protocol; live events then come from ``/v1/calls/{call_id}/events``). Both need the ``subscribe`` scope, like the
live events; another tenant's call is a 404."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from speechsvc.protocol import event_dict
from speechsvc.runtime.engine import Engine
from speechsvc.security.asgi import require
from speechsvc.security.principal import Principal

router = APIRouter()
SUBSCRIBE = Depends(require("subscribe", "calls"))


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


@router.get("/v1/calls")
async def list_calls(
    request: Request, active: bool = Query(False, description="only calls in progress"),
    tenant: str | None = Query(None, description="admins: only this tenant's calls"),
    principal: Principal = SUBSCRIBE,
) -> dict[str, Any]:
    return {"calls": _engine(request).calls.calls(principal, include_ended=not active, tenant=tenant)}


@router.get("/v1/calls/{call_id}")
async def get_call(
    call_id: str, request: Request, tenant: str | None = Query(None, description="admins: the call's tenant"),
    principal: Principal = SUBSCRIBE,
) -> dict[str, Any]:
    index = _engine(request).calls
    view = index.get(principal, call_id, tenant)
    if view is None:
        raise HTTPException(404, f"no recent call {call_id}")
    return {**view.summary(time.time()), "events": [event_dict(e) for e in index.history(view)]}
