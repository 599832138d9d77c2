"""The HTTP service: `bentoml serve serving.service:Recommender` (what `gfm serve` runs).

    POST /recommend {user_id, k, item_types?, exclude_consumed?, recent_item_ids?}
    POST /similar   {item_id, k, item_types?}
    POST /score     {user_id, item_ids, recent_item_ids?}
    GET  /readyz    200 with what is served once the model, the Feast store and the Milvus
                    index are loaded; else 503 with the reason and the fix
    GET  /docs.json the OpenAPI description (Swagger UI at /)

The workspace comes from GFM_WORKDIR (and its configuration from GFM_CONFIG / GFM_SET), set by
`gfm serve`. Each worker process loads one `serving.engine.Engine`. If loading fails (no index
yet, Redis down, ...) the worker still starts: /readyz answers 503 and every endpoint 503 with
the reason, and loading is retried at most every RETRY_S seconds, so a server started before
`gfm index` becomes ready by itself.

The model is not a `bentoml.models.BentoModel` class attribute (STYLE.md's example): which
model is served is the workspace's pointer (`gfm train two-tower` moves it), known only once
GFM_WORKDIR is read, and a missing model must make the worker unready (503 with the fix), not
fail the import. The engine loads it with `load_bundle`, evaluation's own loader, from the
workspace's BentoML store.

Bodies are flat JSON objects (`input_spec=` + `**params`, see STACK.md); bad input is a 400
from pydantic (schemas.py), an unknown item type a 400, an unknown /similar item a 404, a body
over serving.max_body_bytes a 413, a form or multipart body a 415 (serving/http.py), each with
{"error": message}.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import anyio
import bentoml
from pydantic import ValidationError
from starlette.responses import JSONResponse

from serving.http import EdgeMiddleware
from serving.schemas import (
    RecommendRequest,
    RecommendResponse,
    ScoreRequest,
    ScoreResponse,
    SimilarRequest,
    SimilarResponse,
)

logger = logging.getLogger(__name__)
# A model swap is an operational event: in the server's log (the workers' root logger stays at
# WARNING, where BentoML leaves it).
logger.setLevel(logging.INFO)

RETRY_S = 5.0
# A worker looks at the workspace's serving pointer (`gfm train two-tower`, `gfm refresh` move
# it) at most this often; a new model is loaded beside the served one and swapped in whole once
# it is ready (its index built), and the old one is closed CLOSE_GRACE_S later, when the
# requests that began on it are done.
SWAP_CHECK_S = 1.0
CLOSE_GRACE_S = 30.0
# Read when `bentoml serve` imports this module: `gfm serve` sets them from the config.
WORKERS = int(os.environ.get("GFM_SERVE_WORKERS", "1"))
ACCESS_LOG = os.environ.get("GFM_ACCESS_LOG", "1") != "0"


class _DropRejectedRequests(logging.Filter):
    """BentoML logs every 4xx with a traceback at ERROR (STACK.md); the access log already
    records them. 5xx tracebacks stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ValidationError):
            return False
        status = getattr(getattr(error, "error_code", None), "value", 500)
        return status >= 500


logging.getLogger("bentoml._internal.server.http_app").addFilter(_DropRejectedRequests())


def _unreachable(exc: Exception) -> bool:
    """Redis (Feast's online store) or the Milvus server down or timing out: a 503, not a 500."""
    import redis.exceptions
    from pymilvus.exceptions import MilvusException, MilvusUnavailableException

    if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                        MilvusUnavailableException)):
        return True
    return isinstance(exc, MilvusException) and "unavailable" in str(exc).lower()


@bentoml.service(
    name="gfm_recommender",
    workers=WORKERS,
    traffic={"timeout": 30},
    # The request's content type stays out of the access log: BentoML's access log decodes it
    # as UTF-8 and drops the connection on one that is not (a 5xx in effect, before the
    # request reaches serving/http.py).
    logging={"access": {"enabled": ACCESS_LOG, "request_content_type": False}},
)
class Recommender:
    """Recommendations from the served two-tower model: user features online from Feast,
    item vectors from Milvus."""

    def __init__(self) -> None:
        self._engine = None
        self._error = "not loaded yet"
        self._last_try = 0.0
        self._lock = threading.Lock()
        self._next_swap_check = 0.0
        self._swapping = False
        self.swaps = 0  # models swapped in since the worker started (/readyz)
        self._load()
        _LIVE["service"] = self  # for /readyz's details (serving/http.py)

    # -- lifecycle -----------------------------------------------------------------------------

    def _load(self) -> None:
        from gfm.errors import GfmError
        from serving.engine import engine_from_environment

        self._last_try = time.monotonic()
        try:
            self._engine = engine_from_environment()
        except GfmError as exc:
            self._error = str(exc)
            logger.error("not ready: %s", exc)
        except Exception as exc:  # e.g. Redis or the Milvus server unreachable: retried
            self._error = f"{type(exc).__name__}: {exc}"
            logger.exception("not ready")

    def _ready_engine(self):
        if self._engine is None and time.monotonic() - self._last_try >= RETRY_S:
            with self._lock:
                if self._engine is None:
                    self._load()
        elif self._engine is not None:
            self._check_pointer()
        return self._engine

    def _check_pointer(self) -> None:
        """Start loading the model the serving pointer names, when it is not the served one."""
        from training.two_tower.store import served_tag

        now = time.monotonic()
        if now < self._next_swap_check or self._swapping:
            return
        self._next_swap_check = now + SWAP_CHECK_S
        try:
            tag = served_tag(self._engine.workspace)
        except Exception:  # a pointer being replaced or removed: keep serving, look again
            return
        if tag == self._engine.manifest["model_tag"]:
            return
        with self._lock:
            if self._swapping:
                return
            self._swapping = True
        threading.Thread(target=self._swap, args=(tag,), name="gfm-model-swap",
                         daemon=True).start()

    def _swap(self, tag: str) -> None:
        """Load the new model beside the served one, then swap the engine reference (one
        assignment: a request holds the engine it began with, so it answers from one model and
        that model's index). Until the new model is servable (`gfm index` not run yet, ...)
        the old one goes on serving, and loading is retried every RETRY_S."""
        from serving.engine import engine_from_environment

        old = self._engine
        try:
            engine = engine_from_environment()
        except Exception as exc:
            logger.warning("%s is pointed at but cannot be served yet (%s: %s); serving %s, "
                           "retrying in %.0f s", tag, type(exc).__name__, exc,
                           old.manifest["model_tag"], RETRY_S)
            self._next_swap_check = time.monotonic() + RETRY_S
            self._swapping = False
            return
        self._engine = engine
        self.swaps += 1
        self._swapping = False
        logger.info("swapped %s for %s", old.manifest["model_tag"], engine.manifest["model_tag"])
        if engine is not old:
            closer = threading.Timer(CLOSE_GRACE_S, old.close)
            closer.daemon = True
            closer.start()

    def __is_ready__(self) -> bool:
        return self._ready_engine() is not None

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """(ready, what is served) or (False, {"error": why and what to do})."""
        engine = self._ready_engine()
        if engine is None:
            return False, {"error": f"the service is not ready: {self._error}",
                           "retry_after_s": RETRY_S}
        return True, {**engine.status(), "swaps": self.swaps}

    @bentoml.on_shutdown
    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()

    def _answer(self, endpoint: str, request: Any) -> Any:
        from serving.engine import RequestError

        engine = self._ready_engine()
        if engine is None:
            return JSONResponse({"error": f"the service is not ready: {self._error}"},
                                status_code=503, headers={"Retry-After": str(int(RETRY_S))})
        try:
            return getattr(engine, endpoint)(request)
        except RequestError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        except Exception as exc:
            if not _unreachable(exc):
                raise  # a bug: BentoML answers 500 and logs the traceback
            logger.error("%s: a store is unreachable: %s", endpoint, exc)
            return JSONResponse({"error": f"a backing store is unreachable ({type(exc).__name__}:"
                                          f" {exc}); retry shortly"},
                                status_code=503, headers={"Retry-After": str(int(RETRY_S))})

    # -- endpoints -----------------------------------------------------------------------------

    @bentoml.api(route="/recommend", input_spec=RecommendRequest)
    def recommend(self, **params: Any) -> RecommendResponse:
        """The k best items for a user (history left out), from the user's features at the
        cutoff; a user without history gets items near recent_item_ids, else the model's answer
        from the user's metadata and its popularity prior."""
        return self._answer("recommend", RecommendRequest(**params))

    @bentoml.api(route="/similar", input_spec=SimilarRequest)
    def similar(self, **params: Any) -> SimilarResponse:
        """The k items nearest to an item (never the item itself); 404 if it is not indexed."""
        return self._answer("similar", SimilarRequest(**params))

    @bentoml.api(route="/score", input_spec=ScoreRequest)
    def score(self, **params: Any) -> ScoreResponse:
        """Scores and ranks candidate items for a user; unknown ids are listed, not scored."""
        return self._answer("score", ScoreRequest(**params))


_LIVE: dict[str, Recommender] = {}  # this worker's service object, once constructed


async def _readiness() -> tuple[bool, dict[str, Any]]:
    service = _LIVE.get("service")
    if service is None:
        return False, {"error": "the service is still starting", "retry_after_s": RETRY_S}
    return await anyio.to_thread.run_sync(service.readiness)


def _error_schema(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "object", "description": description, "required": ["error"],
            "properties": {"error": {"type": "string", "description": "what was wrong and what "
                                                                      "to send instead"},
                           **extra}}


def openapi(spec: dict[str, Any]) -> dict[str, Any]:
    """BentoML's OpenAPI document, made the project's: title, version and description, the
    served model, and error bodies as they are sent."""
    from gfm import __version__

    info = spec.setdefault("info", {})
    info.pop("contact", None)
    info["title"] = "gfm recommender"
    info["version"] = __version__
    service = _LIVE.get("service")
    engine = service._engine if service is not None else None
    served = (f" Serving model {engine.bundle.version} (feature service "
              f"{engine.bundle.feature_service})." if engine is not None else "")
    info["description"] = (
        "Recommendations from the served two-tower model of a gfm workspace: user features "
        "online from Feast, item vectors from Milvus. Bodies are flat JSON objects "
        "(Content-Type: application/json). Every id in the examples exists after `make demo`."
        + served + " Documentation: docs/serving.md.")
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["InvalidArgument"] = _error_schema(
        "400: a body that does not validate (detail: pydantic's errors) or an unknown item type",
        detail={"type": "array", "description": "one entry per invalid field",
                "items": {"type": "object", "properties": {
                    "loc": {"type": "array", "items": {"anyOf": [{"type": "string"},
                                                                 {"type": "integer"}]}},
                    "msg": {"type": "string"}, "type": {"type": "string"}}}})
    schemas["NotFound"] = _error_schema("404: /similar's item_id is not in the index",
                                        item_id={"type": "string"})
    schemas["Error"] = _error_schema("413, 415, 503: see the message")
    extra = {"413": "the body is over serving.max_body_bytes (default 1 MiB)",
             "415": "a form or multipart body: send JSON (Content-Type: application/json)",
             "503": "not ready, or a backing store is unreachable (Retry-After)"}
    for path, item in spec.get("paths", {}).items():
        post = item.get("post")
        if post is None or path not in ("/recommend", "/similar", "/score"):
            continue
        responses = post.setdefault("responses", {})
        if path != "/similar":
            responses.pop("404", None)
        for status, description in extra.items():
            responses[status] = {"description": description, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Error"}}}}
    return spec


Recommender.add_asgi_middleware(EdgeMiddleware, status=_readiness, openapi=openapi)
