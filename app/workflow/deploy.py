"""Versioned deployment of BPMN processes and DMN decisions (F19).

A deployment validates everything first and stores nothing unless all of it is sound:
well-formed XML, a spec SpiffWorkflow accepts, only registered task keys and service
operations, every called decision present, and every expression inside the sandbox's
allowlist. Unchanged files make no new version. A process is re-versioned when a
decision it calls changes, so new instances get the new rule and running ones keep the
version they started on.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.specs.defaults import BusinessRuleTask
from sqlalchemy import func, select, text

from app.errors import ApiError
from app.extensions import db
from app.models import ProcessDefinition, Role
from app.workflow import registry, sandbox
from app.workflow.decisions import (
    SAFE_XML,
    SUPPORTED_HIT_POLICIES,
    DecisionError,
    coverage_problems,
    entry_expression,
    parse_table,
    typed_value,
)
from app.workflow.runtime import parse_duration
from app.workflow.specs import AsyncServiceTask, YdxParser, spec_to_json

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"

# (local tag, namespace, mode) of elements whose text is an expression or a script
_BPMN_EXPRESSIONS = (
    ("conditionExpression", BPMN_NS, "eval"),
    ("completionCondition", BPMN_NS, "eval"),
    ("loopCardinality", BPMN_NS, "eval"),
    ("timeDuration", BPMN_NS, "eval"),
    ("timeDate", BPMN_NS, "eval"),
    ("timeCycle", BPMN_NS, "eval"),
    ("condition", BPMN_NS, "eval"),  # conditional events
    ("loopCondition", BPMN_NS, "eval"),  # standard loops
    ("formalExpression", BPMN_NS, "eval"),  # correlation properties
    ("messagePath", BPMN_NS, "eval"),  # correlation property retrieval
    ("messagePayload", SPIFF_NS, "eval"),
    ("script", BPMN_NS, "exec"),
    ("preScript", SPIFF_NS, "exec"),
    ("postScript", SPIFF_NS, "exec"),
)
_EXPRESSION_PROPERTIES = ("assignee", "due_from")
_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"


@dataclass
class Upload:
    """One uploaded file."""

    name: str
    content: bytes
    root: Any = None
    kind: str = ""
    checksum: str = ""
    keys: list[str] = field(default_factory=list)


class DeploymentErrors:
    """Collects problems per file so one 422 names all of them."""

    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, file_name: str, message: str) -> None:
        self.fields.setdefault(file_name or "deployment", []).append(message)

    def raise_if_any(self) -> None:
        if self.fields:
            first_file, messages = next(iter(self.fields.items()))
            raise ApiError(
                "invalid_deployment",
                f"流程文件 {first_file} 校验未通过 (deployment of {first_file} refused): {messages[0]}",
                422,
                fields=dict(self.fields),
            )


def _element_id(node: Any) -> str:
    while node is not None:
        if node.get("id"):
            return node.get("id")
        node = node.getparent()
    return "?"


def _check_expression(
    errors: DeploymentErrors, upload: Upload, node: Any, source: str, mode: str, written: str | None = None
) -> bool:
    """Whether `source` passed the sandbox's check (else the refusal is added, quoting
    `written`, the text as the analyst wrote it, when `source` was derived from it)."""
    try:
        sandbox.check(source, mode)  # type: ignore[arg-type]
    except sandbox.UnsafeExpression as exc:
        element = _element_id(node)
        where = f"in `{written.strip()[:120]}`" if written is not None else _offending_text(source, mode, exc.lineno)
        errors.add(upload.name, f"元素 '{element}' 的表达式不安全或无效 (element '{element}': {exc.reason} {where})")
        return False
    return True


_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # what Python's tokenizer counts, not str.splitlines


def _offending_text(source: str, mode: str, lineno: int | None) -> str:
    """Where a refused script goes wrong: its line (numbered when it has several), or the
    expression itself; at most 120 characters of it. Line numbers count in the text the
    sandbox parsed: an expression without its surrounding whitespace."""
    lines = _LINE_BREAK.split(source.strip() if mode == "eval" else source)
    if lineno is not None and 1 <= lineno <= len(lines) and len(lines) > 1:
        return f"on line {lineno}: `{lines[lineno - 1].strip()[:120]}`"
    return f"in `{source.strip()[:120]}`"


def _check_bpmn_expressions(errors: DeploymentErrors, upload: Upload, roles: set[str]) -> None:
    checked = set()
    for tag, namespace, mode in _BPMN_EXPRESSIONS:
        for node in upload.root.iter(f"{{{namespace}}}{tag}"):
            checked.add(node)
            if node.text and node.text.strip():
                _check_expression(errors, upload, node, node.text, mode)
    # Whatever its tag, an element the file types as an expression is checked as one: a
    # place the list above misses must not become a place nobody checks.
    for node in upload.root.iter():
        if node in checked or not isinstance(node.tag, str) or not (node.text and node.text.strip()):
            continue
        if node.get(_XSI_TYPE, "").rpartition(":")[2] in ("tFormalExpression", "tExpression"):
            _check_expression(errors, upload, node, node.text, "eval")
    for node in upload.root.iter(f"{{{SPIFF_NS}}}parameter"):
        if node.get("value"):
            _check_expression(errors, upload, node, node.get("value"), "eval")
    for node in upload.root.iter(f"{{{SPIFF_NS}}}property"):
        name, value = node.get("name"), node.get("value") or ""
        if name in _EXPRESSION_PROPERTIES:
            _check_expression(errors, upload, node, value, "eval")
        elif name == "due" and parse_duration(value) is None:
            errors.add(
                upload.name,
                f"元素 '{_element_id(node)}' 的期限 '{value}' 不是有效时长 (element '{_element_id(node)}': due '{value}' "
                "is not a duration of weeks, days, hours, minutes or seconds)",
            )
        elif name == "priority" and not (value.isdigit() and 0 <= int(value) <= 100):
            errors.add(
                upload.name,
                f"元素 '{_element_id(node)}' 的优先级须为 0 至 100 的整数 (element '{_element_id(node)}': priority '{value}' must be an integer 0..100)",
            )
        elif name == "candidate_role" and value not in roles:
            errors.add(
                upload.name,
                f"元素 '{_element_id(node)}' 的候选角色 '{value}' 不存在 (element '{_element_id(node)}': unknown candidate_role '{value}')",
            )


# The column types a modeler offers (Camunda: string, boolean, integer, long, double, date)
# and DMN's own names; a column of another type would never be checked at run time.
KNOWN_TYPE_REFS = frozenset(
    {"string", "boolean", "integer", "long", "double", "number", "decimal", "date", "time", "datetime", "any"}
)


def _check_dmn(errors: DeploymentErrors, upload: Upload) -> None:
    decisions = [node for node in upload.root.iter(etree.Element) if etree.QName(node).localname == "decision"]
    if len(decisions) != 1:
        errors.add(
            upload.name,
            f"一个 DMN 文件须只含一个决策，实际 {len(decisions)} 个 (a DMN file must hold exactly one decision, found {len(decisions)})",
        )
        return
    upload.keys = [decisions[0].get("id") or ""]
    if not upload.keys[0] or len(upload.keys[0]) > 64:
        errors.add(upload.name, "决策编号须为 1 至 64 个字符 (the decision id must have 1 to 64 characters)")
    for node in upload.root.iter(etree.Element):
        local = etree.QName(node).localname
        type_ref = node.get("typeRef")
        if local in ("output", "inputExpression") and type_ref and type_ref.lower() not in KNOWN_TYPE_REFS:
            element = _element_id(node)
            errors.add(
                upload.name,
                f"元素 '{element}' 的类型 '{type_ref[:32]}' 未知 (element '{element}': unknown typeRef "
                f"'{type_ref[:32]}'; one of {', '.join(sorted(KNOWN_TYPE_REFS))})",
            )
        if local == "decisionTable":
            policy = node.get("hitPolicy", "UNIQUE")
            if policy not in SUPPORTED_HIT_POLICIES:
                errors.add(
                    upload.name,
                    f"元素 '{_element_id(node)}' 的命中策略 {policy} 不受支持 (element '{_element_id(node)}': hit policy {policy} is not supported)",
                )
        if local != "text" or not (node.text or "").strip():
            continue
        parent = etree.QName(node.getparent()).localname
        text = node.text.strip()
        if parent == "inputExpression" or parent == "outputEntry":
            if _check_expression(errors, upload, node, text, "eval") and parent == "outputEntry":
                _check_output_type(errors, upload, node.getparent(), text)
        elif parent == "inputEntry" and text != "-":
            _check_expression(errors, upload, node, entry_expression(text), "eval", written=text)


def _check_output_type(errors: DeploymentErrors, upload: Upload, entry: Any, text: str) -> None:
    """A rule's output that is a constant (`"lowest"`, `0.10`) must have the type its column
    declares: the engine would refuse it each time the rule matched, at an approver's hand."""
    rule, table = entry.getparent(), entry.getparent().getparent()
    outputs = [n for n in table if etree.QName(n).localname == "output"]
    entries = [n for n in rule if etree.QName(n).localname == "outputEntry"]
    if len(outputs) != len(entries):
        return  # the table's shape is the parser's to refuse
    column = outputs[entries.index(entry)]
    value = sandbox.constant_value(text)
    if value is sandbox.NOT_CONSTANT:
        return
    name = column.get("name") or column.get("id") or "?"
    try:
        typed_value(upload.keys[0] if upload.keys else "?", name, column.get("typeRef"), value)
    except DecisionError as exc:
        element = _element_id(entry)
        errors.add(
            upload.name,
            f"元素 '{element}' 的输出值与列类型不符 (element '{element}': {exc})",
        )


def _read(uploads: list[Upload], errors: DeploymentErrors, roles: set[str]) -> None:
    for upload in uploads:
        lowered = upload.name.lower()
        upload.kind = "process" if lowered.endswith(".bpmn") else "decision" if lowered.endswith(".dmn") else ""
        if not upload.kind:
            errors.add(upload.name, "只能部署 .bpmn 和 .dmn 文件 (only .bpmn and .dmn files can be deployed)")
            continue
        if len(upload.name) > 128:
            errors.add(upload.name[:60] + "…", "文件名超过 128 个字符 (file name longer than 128 characters)")
            continue
        try:
            upload.content.decode("utf-8")
        except UnicodeDecodeError:
            errors.add(upload.name, "流程文件须为 UTF-8 编码 (process files must be UTF-8 encoded)")
            continue
        upload.checksum = hashlib.sha256(upload.content).hexdigest()
        try:
            upload.root = etree.fromstring(upload.content, SAFE_XML)
        except etree.XMLSyntaxError as exc:
            reason = exc.msg if f"line {exc.lineno}" in exc.msg else f"{exc.msg}, line {exc.lineno}"
            errors.add(upload.name, f"XML 格式错误，第 {exc.lineno} 行 (malformed XML: {reason})")
            continue
        if upload.root.getroottree().docinfo.doctype:
            errors.add(upload.name, "流程文件中不允许 DOCTYPE (a DOCTYPE is not allowed in process files)")
            continue
        if _refuse_repeated_ids(errors, upload):
            continue
        if upload.kind == "process":
            upload.keys = [
                node.get("id")
                for node in upload.root.iter(f"{{{BPMN_NS}}}process")
                if node.get("isExecutable", "true").lower() == "true"
            ]
            if not upload.keys:
                errors.add(upload.name, "文件中没有可执行的流程 (no executable process in the file)")
            for key in upload.keys:
                if not key or len(key) > 64:
                    errors.add(
                        upload.name,
                        f"流程编号 '{(key or '')[:70]}' 须为 1 至 64 个字符 (process id must have 1 to 64 characters)",
                    )
            _check_bpmn_expressions(errors, upload, roles)
        else:
            _check_dmn(errors, upload)


def _refuse_repeated_ids(errors: DeploymentErrors, upload: Upload) -> bool:
    """An `id` is unique within a BPMN or DMN document (xs:ID): a task copied in a modeler
    and left with its twin's id would otherwise reach the engine, whose complaint ("we
    found two items, perhaps a form has the same ID?") names another element."""
    seen: set[str] = set()
    repeated: list[str] = []
    for node in upload.root.iter(etree.Element):
        element_id = node.get("id")
        if element_id is None:
            continue
        if element_id in seen and element_id not in repeated:
            repeated.append(element_id)
        seen.add(element_id)
    for element_id in repeated[:10]:
        shown = element_id[:64]
        errors.add(upload.name, f"标识 '{shown}' 被多个元素使用 (the id '{shown}' is used by more than one element)")
    return bool(repeated)


def _refuse_duplicates(uploads: list[Upload], errors: DeploymentErrors) -> list[Upload]:
    """One upload defines each process or decision once: two different files for the same
    key would leave the new version to the order of the parts. The same file sent twice
    counts once (it would otherwise make two identical versions)."""
    first: dict[tuple[str, str], Upload] = {}
    seen: set[tuple[str, str]] = set()
    unique: list[Upload] = []
    for upload in uploads:
        if upload.keys and (upload.kind, upload.checksum) in seen:
            continue
        seen.add((upload.kind, upload.checksum))
        unique.append(upload)
        for key in upload.keys:
            earlier = first.setdefault((upload.kind, key), upload)
            if earlier is not upload and earlier.checksum != upload.checksum:
                what = "流程" if upload.kind == "process" else "决策"
                errors.add(
                    upload.name,
                    f"{what} '{key}' 已由本次上传的 {earlier.name} 定义，内容不同 "
                    f"({upload.kind} '{key}' is already defined by {earlier.name} in this upload, differently)",
                )
    return unique


def _latest(kind: str) -> dict[str, ProcessDefinition]:
    newest = (
        select(ProcessDefinition.key, func.max(ProcessDefinition.version).label("version"))
        .where(ProcessDefinition.kind == kind)
        .group_by(ProcessDefinition.key)
        .subquery()
    )
    rows = db.session.scalars(
        select(ProcessDefinition)
        .join(
            newest,
            (ProcessDefinition.key == newest.c.key) & (ProcessDefinition.version == newest.c.version),
        )
        .where(ProcessDefinition.kind == kind)
    )
    return {row.key: row for row in rows}


def _called_decisions(root: Any) -> dict[str, str]:
    refs: dict[str, str] = {}
    for task in root.iter(f"{{{BPMN_NS}}}businessRuleTask"):
        called = task.find(f".//{{{SPIFF_NS}}}calledDecisionId")
        refs[task.get("id")] = (called.text or "").strip() if called is not None else ""
    return refs


def _check_spec(errors: DeploymentErrors, file_name: str, spec: Any, subprocess_specs: dict[str, Any]) -> None:
    for container in (spec, *subprocess_specs.values()):
        for task_spec in container.task_specs.values():
            if getattr(task_spec, "manual", False) and task_spec.bpmn_id not in registry.FORMS:
                errors.add(
                    file_name,
                    f"元素 '{task_spec.bpmn_id}' 是未知的任务键，没有对应表单 (element '{task_spec.bpmn_id}': unknown task key, no form is registered for it)",
                )
            if isinstance(task_spec, AsyncServiceTask) and task_spec.operation_name not in registry.SERVICES:
                errors.add(
                    file_name,
                    f"元素 '{task_spec.bpmn_id}' 的服务操作 '{task_spec.operation_name}' 不存在 "
                    f"(element '{task_spec.bpmn_id}': unknown service operation '{task_spec.operation_name}')",
                )


def deploy(files: list[tuple[str, bytes]], actor_id: int | None) -> list[ProcessDefinition]:
    """Validate and store new versions; returns only what changed (empty if nothing did)."""
    errors = DeploymentErrors()
    if not files:
        raise ApiError(
            "validation_error",
            "请上传流程文件 (no file uploaded)",
            422,
            fields={"file": ["至少上传一个 .bpmn 或 .dmn 文件 (at least one file is required)"]},
        )
    if db.engine.dialect.name == "postgresql":  # one deployment at a time: versions are max + 1
        db.session.execute(text("SELECT pg_advisory_xact_lock(727001)"))
    uploads = [Upload(name, content) for name, content in files]
    roles = set(db.session.scalars(select(Role.code)))
    _read(uploads, errors, roles)
    uploads = _refuse_duplicates(uploads, errors)
    errors.raise_if_any()

    latest_decisions = _latest("decision")
    latest_processes = _latest("process")
    decision_sources: dict[str, tuple[str, bytes, str]] = {
        key: (row.file_name, row.source.encode(), row.checksum) for key, row in latest_decisions.items()
    }
    changed_decisions: set[str] = set()
    for upload in uploads:
        if upload.kind == "decision":
            key = upload.keys[0]
            if key not in latest_decisions or latest_decisions[key].checksum != upload.checksum:
                changed_decisions.add(key)
            decision_sources[key] = (upload.name, upload.content, upload.checksum)

    process_sources: dict[str, tuple[str, bytes, str]] = {}
    for upload in uploads:
        if upload.kind == "process":
            for key in upload.keys:
                process_sources[key] = (upload.name, upload.content, upload.checksum)
    for key, row in latest_processes.items():
        if key not in process_sources and set(row.bound_decisions) & changed_decisions:
            process_sources[key] = (row.file_name, row.source.encode(), row.checksum)

    parser = YdxParser()
    for key, (name, content, _) in decision_sources.items():
        try:
            parser.add_dmn_xml(etree.fromstring(content, SAFE_XML), filename=name)
            if key in changed_decisions:
                for problem in coverage_problems(parse_table(content, name)):
                    errors.add(name, problem)
        except (ValidationException, SpiffWorkflowException, etree.XMLSyntaxError) as exc:
            errors.add(name, _describe(exc))
    errors.raise_if_any()
    seen_files: set[str] = set()
    for name, content, _ in process_sources.values():
        if name in seen_files:
            continue
        seen_files.add(name)
        try:
            parser.add_bpmn_xml(etree.ElementTree(etree.fromstring(content, SAFE_XML)), filename=name)
        except (ValidationException, SpiffWorkflowException, etree.XMLSyntaxError) as exc:
            errors.add(name, _describe(exc))
    errors.raise_if_any()

    prepared: list[dict[str, Any]] = []
    for key, (name, content, checksum) in process_sources.items():
        refs = _called_decisions(etree.fromstring(content, SAFE_XML))
        for task_id, decision_id in refs.items():
            if decision_id not in decision_sources:
                errors.add(
                    name,
                    f"元素 '{task_id}' 调用的决策 '{decision_id}' 未部署也未上传 (element '{task_id}': called decision '{decision_id}' is not deployed or uploaded)",
                )
        if errors.fields:
            continue
        try:
            spec = parser.get_spec(key)
            subprocess_specs = parser.get_subprocess_specs(key)
        except (ValidationException, SpiffWorkflowException) as exc:
            errors.add(name, _describe(exc))
            continue
        _check_spec(errors, name, spec, subprocess_specs)
        for task_spec in spec.task_specs.values():
            if isinstance(task_spec, BusinessRuleTask) and task_spec.bpmn_id not in refs:
                errors.add(
                    name,
                    f"元素 '{task_spec.bpmn_id}' 是未指定决策的业务规则任务 (element '{task_spec.bpmn_id}': business rule task without calledDecisionId)",
                )
        prepared.append(
            {
                "key": key,
                "name": (getattr(spec, "description", None) or spec.name or key)[:128],
                "file_name": name,
                "source": content.decode(),
                "checksum": checksum,
                "refs": refs,
                "spec_json": spec_to_json(spec, subprocess_specs, refs),
            }
        )
    errors.raise_if_any()

    created: list[ProcessDefinition] = []
    decision_versions = {key: row.version for key, row in latest_decisions.items()}
    for upload in uploads:
        if upload.kind != "decision" or upload.keys[0] not in changed_decisions:
            continue
        key = upload.keys[0]
        version = decision_versions.get(key, 0) + 1
        decision_versions[key] = version
        name_node = next(node for node in upload.root.iter(etree.Element) if etree.QName(node).localname == "decision")
        created.append(
            ProcessDefinition(
                kind="decision",
                key=key,
                version=version,
                name=(name_node.get("name") or key)[:128],
                checksum=upload.checksum,
                file_name=upload.name,
                source=upload.content.decode(),
                bound_decisions={},
                deployed_by_id=actor_id,
            )
        )
    for item in prepared:
        bound = {decision_id: decision_versions[decision_id] for decision_id in set(item["refs"].values())}
        current = latest_processes.get(item["key"])
        if current and current.checksum == item["checksum"] and current.bound_decisions == bound:
            continue
        created.append(
            ProcessDefinition(
                kind="process",
                key=item["key"],
                version=(current.version if current else 0) + 1,
                name=item["name"],
                checksum=item["checksum"],
                file_name=item["file_name"],
                source=item["source"],
                bound_decisions=bound,
                spec_json=item["spec_json"],
                deployed_by_id=actor_id,
            )
        )
    db.session.add_all(created)
    db.session.flush()
    return created


def _describe(exc: Exception) -> str:
    element = getattr(exc, "id", "") or getattr(exc, "name", "")
    line = getattr(exc, "line_number", "")
    where = f"element '{element}'" if element else "file"
    text = exc.msg if isinstance(exc, etree.XMLSyntaxError) and exc.msg else str(exc)  # without "(<string>, line n)"
    if line and f"line {line}" in text:  # the parser's message already says where
        line = ""
    return f"流程文件无法解析 ({where}{f' (line {line})' if line else ''}: {text})"
