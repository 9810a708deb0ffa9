"""Browser security headers on every response (F21): the console's pages cannot be
framed (clickjacking of the approve and complete forms), run no script and post forms only
to this site; nothing is type-sniffed; API answers (personal data) are not cached; in
production browsers are told to use HTTPS only."""

from __future__ import annotations

from flask import Flask, Response, request

# The console's pages: server-rendered, no script, one inline style sheet, forms to self.
CONSOLE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# JSON answers: nothing to run, nothing to frame.
DATA_POLICY = "default-src 'none'; frame-ancestors 'none'; sandbox"
# The API documentation page loads Swagger UI from its pinned CDN address (see config), and
# downloads (photos, PDFs) open in the browser's own viewers, which a sandbox would stop:
# only framing is refused there (downloads are sent as their checked type with nosniff).
FRAMING_POLICY = "frame-ancestors 'none'"
HSTS = "max-age=31536000"


def init_app(app: Flask) -> None:
    """Install the headers; a response that set its own keeps it (attachment downloads,
    the diagram XML)."""

    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        path = request.path
        if response.mimetype == "text/html" and not path.startswith("/api/docs"):
            headers.setdefault("Content-Security-Policy", CONSOLE_POLICY)
        elif response.mimetype == "application/json":
            headers.setdefault("Content-Security-Policy", DATA_POLICY)
        else:
            headers.setdefault("Content-Security-Policy", FRAMING_POLICY)
        if path.startswith("/api/") and not path.startswith("/api/docs"):
            headers.setdefault("Cache-Control", "no-store")
        if app.config.get("YDX_PRODUCTION"):
            headers.setdefault("Strict-Transport-Security", HSTS)
        return response
