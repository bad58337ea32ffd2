"""What the local cloud's services share: how an operation is registered, validated, run and answered.

A service (SageMaker's control plane, CloudWatch) subclasses :class:`Service`, names botocore's model
of it and the operations it serves, and writes one method per operation, ``create_model(region,
params) -> dict``, named after the operation in snake case. :meth:`Service.call` does the rest for
every operation alike: the operation's lookup, the body's decoding by the request's wire, validation
against the model (AWS's "N validation errors detected" text), the handler, the answer cut to the
output shape, and every error in the service's shape. Both services read time from the same injected
clock (``modelops.runtime.Clock``), so tests drive them with a fake one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar

from modelops.localcloud.protocol import (
    Response,
    ServiceError,
    Wire,
    service_model,
    shape_output,
    validate_input,
)
from modelops.runtime import Clock, SystemClock

log = logging.getLogger("modelops.localcloud")

UNKNOWN_OPERATION = "The operation {operation} is not supported by the local cloud."
INTERNAL = "An internal error occurred."

Handler = Callable[[str, dict[str, Any]], dict[str, Any]]


def snake_case(name: str) -> str:
    """``CreateEndpointConfig`` -> ``create_endpoint_config``."""
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


class Service:
    """One AWS service of the local cloud, every region in it."""

    MODEL: ClassVar[str]  # botocore's name of the service
    OPERATIONS: ClassVar[tuple[str, ...]]  # the operations served, each by the method of its snake-case name
    VALIDATION_CODE: ClassVar[str] = "ValidationException"
    INTERNAL_CODE: ClassVar[str] = "InternalFailure"
    FINITE_FLOATS: ClassVar[bool] = True  # whether validation refuses NaN and infinite floats itself

    def __init__(self, clock: Clock | None = None):
        self.clock: Clock = clock or SystemClock()
        self.model = service_model(self.MODEL)
        self.operations: dict[str, Handler] = {name: getattr(self, snake_case(name)) for name in self.OPERATIONS}

    def call(self, operation: str, body: bytes, wire: Wire, region: str) -> Response:
        """Answer one request for ``operation`` (never raises: errors are answered in ``wire``'s shape)."""
        try:
            handler = self.operations.get(operation)
            if handler is None:
                raise ServiceError("UnknownOperationException", UNKNOWN_OPERATION.format(operation=operation or "(none)"))
            params = validate_input(self.MODEL, operation, wire.decode(body), code=self.VALIDATION_CODE,
                                    finite_floats=self.FINITE_FLOATS)
            result = self.run(handler, region, params)
            return wire.answer(shape_output(self.model.operation_model(operation).output_shape, result) or {})
        except ServiceError as err:
            if err.status >= 500:
                log.error("%s.%s: %s", self.MODEL, operation, err.message)
            return wire.error(err)
        except Exception:  # a bug here must not take the server down or leak a traceback to the client
            log.exception("%s.%s failed inside the local cloud", self.MODEL, operation)
            return wire.error(ServiceError(self.INTERNAL_CODE, INTERNAL, 500))

    def run(self, handler: Handler, region: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run one handler (a service that must hold a lock around its handlers says so here)."""
        return handler(region, params)
