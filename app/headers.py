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
    common = [("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"), ("Referrer-Policy", "same-origin")]
    if app.config.get("YDX_PRODUCTION"):
        common.append(("Strict-Transport-Security", HSTS))
    no_store = ("Cache-Control", "no-store")
    docs = f"/{app.config['OPENAPI_URL_PREFIX'].strip('/')}/{app.config['OPENAPI_SWAGGER_UI_PATH'].strip('/')}"

    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        present = {name.lower() for name in headers.keys()}  # (each `in` would lower every name)
        path = request.path
        if response.mimetype == "text/html" and path != docs:
            policy = CONSOLE_POLICY
        elif response.mimetype == "application/json":
            policy = DATA_POLICY
        else:
            policy = FRAMING_POLICY
        wanted = [*common, ("Content-Security-Policy", policy)]
        if path.startswith("/api/") and path != docs:
            wanted.append(no_store)
        for name, value in wanted:
            if name.lower() not in present:
                headers.add(name, value)
        return response
