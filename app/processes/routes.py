"""Process management and decisions (analysts, admins): F7, F19."""

from __future__ import annotations

from pathlib import PurePosixPath

from flask import Response, request
from marshmallow import Schema, fields, validate

from app import audit, docs
from app.auth.permissions import caller, requires
from app.errors import ApiError
from app.extensions import db
from app.hardening import Blueprint
from app.processes import services
from app.schemas import MAX_PER_PAGE, PageArgs, jsonable, page_of
from app.workflow.deploy import deploy

blp = Blueprint("processes", __name__, url_prefix="/api/v1", description="流程与决策 Processes and decisions")


class ProcessListArgs(PageArgs):
    # A page holds every version of a few keys (each deployment of a rule adds a process
    # version too), so the default page is larger than other lists'.
    per_page = fields.Integer(
        load_default=100,
        validate=validate.Range(min=1),
        metadata={"description": f"items per page (default 100); more than {MAX_PER_PAGE} gives {MAX_PER_PAGE}"},
    )


class VersionArgs(Schema):
    version = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2**31 - 1))


@blp.route("/processes")
@blp.alt_response(200, schema=docs.VersionPageDoc, success=True, description="OK")
@blp.arguments(ProcessListArgs(), location="query")
@requires("process.view")
def list_processes(args):  # type: ignore[no-untyped-def]
    """Deployed process keys and decision ids with their versions (newest first per key)."""
    items, total = services.list_versions(args["page"], args["per_page"])
    return page_of(items, total, args)


@blp.route("/processes/deployments", methods=["POST"])
@blp.alt_response(201, schema=docs.DeploymentDoc, success=True, description="OK")
@blp.doc(
    requestBody={
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "array", "items": {"type": "string", "format": "binary"}}},
                }
            }
        },
    }
)
@requires("process.deploy")
def create_deployment():  # type: ignore[no-untyped-def]
    """Deploy `.bpmn`/`.dmn` files (multipart `file` fields); 422 names what is wrong."""
    uploads = request.files.getlist("file")  # none at all: `deploy` answers 422
    who = caller()
    files = [(_file_name(f.filename), f.read()) for f in uploads]
    try:
        created = deploy(files, who.id)
    except ApiError as exc:
        if exc.status == 422:  # a refused deployment is kept in the audit trail (F21), nothing else
            audit.record_refusal("process.deploy", who.id, "deployment", None, exc.message)
        raise
    audit.record(
        "process.deploy", who.id, "deployment", None, after={"created": [f"{d.key}:{d.version}" for d in created]}
    )
    result = [services.describe(row) for row in created]
    touched = {(row.kind, row.key): row for row in services.current_versions([content for _name, content in files])}
    touched.update({(row.kind, row.key): row for row in created})  # also what a changed rule re-versioned
    new = {id(row) for row in created}
    current = [{**services.describe(row), "new": id(row) in new} for _kind_key, row in sorted(touched.items())]
    db.session.commit()
    return {"created": result, "unchanged": not result, "versions": current}, 201


def _file_name(sent: str | None) -> str:
    """The file's own name: a client's directories (`../../etc/x.dmn`, `C:\\x.dmn`) are
    not part of what is stored and shown."""
    return PurePosixPath((sent or "").replace("\\", "/")).name or "unnamed"


@blp.route("/processes/<key>/versions/<int(max=2147483647):version>/diagram")
@blp.alt_response(
    200,
    schema={"type": "string"},
    content_type="application/xml",
    description="the deployed BPMN XML (for a decision's key, its DMN XML)",
    success=True,
)
@requires("process.view")
def diagram(key: str, version: int):  # type: ignore[no-untyped-def]
    """The BPMN XML of a deployed version; `GET /processes` lists decisions beside the
    processes, so a decision's key answers its DMN XML (a process of the same key first)."""
    try:
        row = services.get_version("process", key, version)
    except ApiError as exc:
        if exc.status != 404:
            raise
        try:
            row = services.get_version("decision", key, version)
        except ApiError:
            raise exc from None  # neither: the process's 404
    response = Response(row.source, mimetype="application/xml")
    # Uploaded XML is served as data, never as a document that could run script here.
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@blp.route("/process-instances/<int(max=2147483647):instance_id>")
@blp.alt_response(200, schema=docs.InstanceDoc, success=True, description="OK")
@requires("process.view")
def instance(instance_id: int):  # type: ignore[no-untyped-def]
    """State, version, current tasks, history."""
    return services.instance_view(instance_id, caller())


@blp.route("/decisions/<decision_id>/evaluate", methods=["POST"])
@blp.alt_response(200, schema=docs.EvaluationDoc, success=True, description="OK")
@blp.doc(
    requestBody={
        "required": False,  # none at all: a 422 naming the inputs the table needs
        "content": {
            "application/json": {
                "schema": {"type": "object", "additionalProperties": True},
                "example": {"amounts": ["100000", "80000"]},
            }
        },
    }
)
@blp.arguments(VersionArgs(), location="query")
@requires("decision.evaluate")
def evaluate(args: dict, decision_id: str):  # type: ignore[no-untyped-def]
    """Evaluate the newest (or `?version=`) deployed table with the given inputs."""
    # A body was checked to be a JSON object (app/hardening.py); none at all names the
    # missing inputs (422) like an empty object, rather than werkzeug's 415.
    payload = request.get_json() if request.get_data(cache=True).strip() else {}
    return jsonable(services.evaluate(decision_id, payload, args["version"]))
