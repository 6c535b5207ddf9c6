"""Baseline for benchmarks/serve_bench.py: a functions-framework target that does nothing."""

import functions_framework


@functions_framework.http
def noop(request):
    """Read the body and answer a tiny JSON document, like the real service minus the work."""
    request.get_data()
    return {"ok": True}
