"""Floors for benchmarks/serve_bench.py: functions-framework targets that do nothing.

``noop`` runs on functions-framework's default stack (Flask on gunicorn threads),
``noop_async`` in its ASGI mode (Starlette on gunicorn + uvicorn workers, ``--asgi``), the
mode the prediction service runs in. Each reads the body and answers a tiny JSON document,
like the real service minus the work.
"""

import functions_framework
from functions_framework import aio
from starlette.responses import JSONResponse


@functions_framework.http
def noop(request):
    """Default stack."""
    request.get_data()
    return {"ok": True}


@aio.http
async def noop_async(request):
    """ASGI mode."""
    await request.body()
    return JSONResponse({"ok": True})
