"""The prediction service's core on functions-framework's default stack (Flask on gunicorn
threads): the benchmark's stand-in for the service as it ran before the ASGI mode.

The handlers are coroutines that only suspend for real I/O (a model retry); for a loaded
model they finish on their first step, so a thread drives them without an event loop.
"""

import flask
import functions_framework

from titanic_mlops.api.http import Call, new_request_id, too_large
from titanic_mlops.api.service import PredictionService
from titanic_mlops.settings import load_settings

service = PredictionService(load_settings())


def _drive(coroutine):
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("the handler waited for I/O: not supported on this stand-in")


@functions_framework.http
def logreg_classifier_default_stack(request: flask.Request) -> flask.Response:
    """Same routes and answers as ``logreg_classifier``, on Flask."""
    body = request.get_data()

    async def read_body(limit: int) -> bytes:
        if len(body) > limit:
            raise too_large(limit)
        return body

    call = Call(request.method, request.path, request.args, request.headers, read_body,
                new_request_id())  # fmt: skip
    reply = _drive(service.handle(call))
    return flask.Response(reply.body, reply.status, reply.headers, content_type=reply.content_type)
