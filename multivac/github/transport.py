"""HTTP to GitHub: one PyGithub requester per thread, the log host, pages and ETags.

Everything goes through PyGithub's requester (auth, base URL, timeouts), with PyGithub's
own retry and throttle switched off: the governor decides how to wait. Failures come out
as `HTTPFailure` (a status, or None for a dropped connection), never as a PyGithub or
requests exception. Lists are followed through their `Link` headers; run-list pages are
conditional requests against the ETag cache, and a 304 is not counted by GitHub.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import Any, Protocol
from urllib.parse import urljoin, urlparse

import requests
from github import Auth, Github, GithubException

from multivac import __version__
from multivac.config import GitHubSettings, redact
from multivac.github.parse import error_message, header, next_link, text

PER_PAGE = 100
USER_AGENT = f"multivac/{__version__}"
# list pages that may be cached (all fetched from the calling thread)
CACHED_KINDS = frozenset({"runs", "workflows", "repos", "repo"})

Headers = Mapping[str, Any]


class HTTPFailure(Exception):
    """A request that did not succeed: `status` None means no answer (connection
    dropped, timeout, body cut short)."""

    def __init__(
        self,
        status: int | None,
        message: str,
        headers: Headers | None = None,
        *,
        never_reached: bool = False,
        malformed: bool = False,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers: Headers = headers or {}
        # no answer from a host that never answered: a wrong URL, not an outage
        self.never_reached = never_reached
        # an answer, but not the JSON GitHub sends (a proxy's HTML page, a cut-off body)
        self.malformed = malformed

    @property
    def transient(self) -> bool:
        """Worth trying again after a while: no answer from a host that answered before,
        or a server error."""
        if self.status is None:
            return not self.never_reached
        return self.status >= 500

    @property
    def why(self) -> str:
        return f"HTTP {self.status}" if self.status is not None else self.message

    def header(self, name: str) -> str | None:
        return header(self.headers, name)

    @property
    def rate_limited(self) -> bool:
        if self.status not in (403, 429):
            return False
        if self.status == 429 or self.header("retry-after") is not None:
            return True
        if self.header("x-ratelimit-remaining") == "0":
            return True
        return "rate limit" in self.message.lower()

    @property
    def primary(self) -> bool:
        """The hourly budget is used up (as opposed to a secondary limit)."""
        return self.header("x-ratelimit-remaining") == "0"


class ResponseCache(Protocol):
    """Remembers list pages by URL so that repeats can be conditional requests."""

    def get_page(self, key: str) -> tuple[str, Any] | None: ...

    def put_page(self, key: str, etag: str, data: Any) -> None: ...


Send = Callable[[str, Callable[[], tuple[Headers, Any]]], tuple[Headers, Any]]

# What a JSON body must look like: a list, an object, or an object holding a list under
# this key. A body of another shape is an error, never an empty page: taking it for "no
# runs" or "no jobs" would lose them for good (the store would remember the run as done).
Shape = type[list[Any]] | type[dict[str, Any]] | str


def shape_problem(data: Any, shape: Shape) -> str | None:
    """Why `data` is not of `shape` (None when it is)."""
    if (
        isinstance(data, dict)
        and set(data) <= {"data", "url"}
        and isinstance(data.get("data"), str)
    ):
        # PyGithub's wrapping of a body that is not JSON at all (an HTML page), to which it
        # adds the URL of a GET
        return "an answer that is not JSON (an HTML page or other text)"
    if shape is list:
        return None if isinstance(data, list) else "an answer that is not a JSON list"
    if not isinstance(data, dict):
        return "an answer that is not a JSON object"
    if isinstance(shape, str) and not isinstance(data.get(shape), list):
        return f"an answer without its {shape!r} list"
    return None


class Transport:
    """Requests to the API and the log host; `send` runs each under the governor."""

    def __init__(
        self,
        settings: GitHubSettings,
        send: Send,
        *,
        timeout_s: float = 30.0,
        cache: ResponseCache | None = None,
    ) -> None:
        self.settings = settings
        self.timeout_s = timeout_s
        self.cache = cache
        self._send = send
        self.not_modified = 0
        self.answered = False  # whether the API ever answered (see HTTPFailure)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._blob = requests.Session()
        # a no-op auth keeps requests from adding ~/.netrc credentials: the signed log URL
        # must never see a credential
        self._blob.auth = lambda request: request
        self._blob.headers["User-Agent"] = USER_AGENT
        parsed = urlparse(settings.api_url)
        self._prefix = parsed.path.rstrip("/")

    # ------------------------------------------------------------------ the API

    def _client(self) -> Github:
        # PyGithub is not thread-safe: one client per thread
        client: Github | None = getattr(self._local, "client", None)
        if client is None:
            token = self.settings.token.reveal()
            client = Github(
                auth=Auth.Token(token) if token else None,
                base_url=self.settings.api_url,
                timeout=math.ceil(self.timeout_s),
                user_agent=USER_AGENT,
                per_page=PER_PAGE,
                retry=None,
                seconds_between_requests=None,
                seconds_between_writes=None,
            )
            self._local.client = client
        return client

    def relative(self, url: str) -> str:
        """A URL GitHub returned (Link, Location) as a path PyGithub accepts on base_url."""
        parsed = urlparse(url)
        path = parsed.path
        if self._prefix and path.startswith(self._prefix + "/"):
            path = path[len(self._prefix) :]
        return path + (f"?{parsed.query}" if parsed.query else "")

    def _request(
        self, call: Callable[[Github], tuple[Headers, Any]], shape: Shape | None = None
    ) -> tuple[Headers, Any]:
        try:
            answer = call(self._client())
        except GithubException as exc:
            self.answered = True
            message = redact(error_message(exc.data, text(exc.message) or f"HTTP {exc.status}"))
            raise HTTPFailure(exc.status, message, exc.headers) from None
        except (requests.RequestException, OSError) as exc:
            raise HTTPFailure(None, type(exc).__name__, never_reached=not self.answered) from None
        except ValueError:
            # PyGithub's json.loads of a cut-off or garbled body (UnicodeDecodeError too)
            raise self._malformed("an answer that is not valid JSON (cut off or garbled)") from None
        if shape is not None and answer[1] is not None:
            problem = shape_problem(answer[1], shape)
            if problem is not None:
                raise self._malformed(problem, answer[0])
        self.answered = True
        return answer

    def _malformed(self, problem: str, headers: Headers | None = None) -> HTTPFailure:
        """Worth retrying only when this API has answered properly before: a host that
        never did is most likely not a GitHub API (a wrong GITHUB_API_URL, a login page)."""
        return HTTPFailure(
            None,
            problem,
            headers,
            never_reached=not self.answered,
            malformed=True,
        )

    def get(
        self,
        kind: str,
        url: str,
        params: dict[str, Any] | None = None,
        shape: Shape = dict,
    ) -> tuple[Headers, Any]:
        """GET a JSON document of `shape`; run-list pages go through the ETag cache (main
        thread only)."""
        cache = self.cache if kind in CACHED_KINDS else None
        # the key leaves out the `created` window: a sliding window (--since 1d) that holds
        # the same runs gives the same body, hence the same ETag, so the cached body is
        # valid for the new URL too, and GitHub answers 304 without counting it
        query = "&".join(f"{k}={v}" for k, v in sorted((params or {}).items()) if k != "created")
        key = f"{url}?{query}" if query else url
        cached = cache.get_page(key) if cache is not None else None
        extra = {"If-None-Match": cached[0]} if cached else None

        def send() -> tuple[Headers, Any]:
            return self._request(
                lambda client: client.requester.requestJsonAndCheck(
                    "GET", url, parameters=params, headers=extra
                ),
                shape,
            )

        headers, data = self._send(f"GET {urlparse(url).path}", send)
        if cached is not None and data is None:
            # 304 Not Modified: GitHub does not count it against the rate limit
            with self._lock:
                self.not_modified += 1
            body = cached[1]
            return {**headers, "link": body.get("link") or ""}, body.get("data")
        etag = header(headers, "etag")
        if cache is not None and etag:
            cache.put_page(key, etag, {"data": data, "link": header(headers, "link") or ""})
        return headers, data

    def pages(
        self, kind: str, url: str, params: dict[str, Any], key: str | None
    ) -> Generator[tuple[list[dict[str, Any]], int | None], None, None]:
        """Each page's items (under `key`, or the page itself when None) and its
        total_count, following Link rel=next."""
        next_url: str | None = url
        next_params: dict[str, Any] | None = params
        while next_url:
            headers, data = self.get(kind, next_url, next_params, list if key is None else key)
            items: list[Any] = []
            total: int | None = None
            if key is None:
                items = data if isinstance(data, list) else []
            else:
                found = data.get(key) if isinstance(data, dict) else None
                items = found if isinstance(found, list) else []
                total_raw = data.get("total_count") if isinstance(data, dict) else None
                total = total_raw if isinstance(total_raw, int) else None
            yield [item for item in items if isinstance(item, dict)], total
            link = next_link(headers)
            if not link or not items:
                return
            next_url, next_params = self.relative(link), None

    # ------------------------------------------------------------------ the log host

    def log_location(self, path: str) -> str | bytes:
        """The signed URL a log request redirects to, as GitHub answers; or the log
        itself, from a GitHub-compatible server that answers 200 with the text. An
        answer with neither is a fault of the server, retried like a 5xx."""

        def send() -> tuple[Headers, Any]:
            headers, data = self._request(
                lambda client: client.requester.requestBlobAndCheck("GET", path)
            )
            if not header(headers, "location") and _text_body(data) is None:
                raise self._malformed("an answer with neither a Location header nor the log")
            return headers, data

        headers, data = self._send(f"GET {path}", send)
        location = header(headers, "location")
        if location:
            return urljoin(self.settings.api_url + "/", location)
        body = _text_body(data)
        assert body is not None
        return body.encode("utf-8", "surrogateescape")

    def open_blob(self, url: str) -> Iterator[bytes]:
        """Stream a signed URL (no token is ever sent there). The iterator raises
        HTTPFailure(None, ...) when the body breaks off."""
        try:
            response = self._blob.get(url, stream=True, timeout=(10, self.timeout_s))
        except (requests.RequestException, OSError) as exc:
            raise HTTPFailure(None, type(exc).__name__) from None
        if response.status_code >= 400:
            response.close()
            raise HTTPFailure(response.status_code, f"HTTP {response.status_code}")
        return _chunks(response)


def _text_body(data: Any) -> str | None:
    """A non-empty body that is not JSON, which PyGithub hands over as {"data": text}
    (with the request's "url" beside it)."""
    body = data.get("data") if isinstance(data, dict) and set(data) <= {"data", "url"} else None
    return body if isinstance(body, str) and body else None


def _chunks(response: requests.Response, size: int = 1 << 16) -> Iterator[bytes]:
    try:
        yield from response.iter_content(chunk_size=size)
    except (requests.RequestException, OSError) as exc:
        raise HTTPFailure(None, f"the download broke off ({type(exc).__name__})") from None
    finally:
        response.close()
