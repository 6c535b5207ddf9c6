"""MkDocs hook: the API reference page and ``/openapi.json``, generated from the OpenAPI document.

``titanic_mlops.api.openapi.build`` is the one source (it is what the service serves at
``GET /openapi.json``); this renders it as markdown where ``docs/api.md`` says
``<!-- openapi -->`` and adds the JSON to the site as ``openapi.json``. No network needed.
"""

from __future__ import annotations

import json
from typing import Any

MARKER = "<!-- openapi -->"


def _document() -> dict[str, Any]:
    from titanic_mlops.api.openapi import build
    from titanic_mlops.settings import DEFAULT_FILE, load_settings

    return build(load_settings(DEFAULT_FILE, env={}).max_instances)


def _schema_ref(content: dict[str, Any]) -> str:
    (media, body), *_ = content.items()
    schema = body.get("schema", {})
    ref = schema.get("$ref", "").rsplit("/", 1)[-1]
    return f"`{media}` [{ref}](#{ref.lower()})" if ref else f"`{media}`"


def render(doc: dict[str, Any]) -> str:
    """The document as markdown: one section per operation, then every schema."""
    out = [f"Generated from the OpenAPI {doc['openapi']} document the service serves at "
           "`GET /openapi.json` ([download](openapi.json)).", ""]  # fmt: skip
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            out += [f"## `{method.upper()} {path}`", "", op.get("summary", op["operationId"]), ""]
            if "requestBody" in op:
                out += [f"**Request body:** {_schema_ref(op['requestBody']['content'])}", ""]
            out += ["| status | meaning | body |", "| --- | --- | --- |"]
            for status, response in op["responses"].items():
                body = _schema_ref(response["content"]) if "content" in response else ""
                out.append(f"| {status} | {response['description']} | {body} |")
            out.append("")
    out += ["## Schemas", ""]
    for name, schema in doc["components"]["schemas"].items():
        out += [f"### {name}", "", "```json", json.dumps(schema, indent=2), "```", ""]
    return "\n".join(out)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, render(_document()))


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    files.append(File.generated(config, "openapi.json", content=json.dumps(_document(), indent=2)))
    return files
