"""The OpenAPI 3.1 document of the prediction API, generated from the feature schema."""

from __future__ import annotations

from typing import Any

from titanic_mlops import schema


def field_schema(spec: schema.FieldSpec) -> dict[str, Any]:
    """JSON Schema of one input; optional inputs also accept null (imputed)."""
    if spec.allowed is not None:
        out: dict[str, Any] = {"enum": list(spec.allowed)}
    else:
        out = {
            "type": "integer" if spec.kind == "integer" else "number",
            "minimum": spec.minimum,
            "maximum": spec.maximum,
        }
    if not spec.required:
        out = {"anyOf": [out, {"type": "null"}]}
    return {**out, "description": spec.description + ("" if spec.required else " (optional)")}


def instance_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {spec.name: field_schema(spec) for spec in schema.FIELDS},
        "required": [spec.name for spec in schema.FIELDS if spec.required],
        "additionalProperties": False,
    }


def _error() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "field": {"type": "string"},
                    "rule": {"type": "string"},
                },
            },
            "request_id": {"type": "string"},
        },
    }


def _json(ref: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


def build(max_instances: int) -> dict[str, Any]:
    """The document served at ``GET /openapi.json``."""
    errors = {
        "400": _json("Error", "Invalid input: the error names the field and the rule."),
        "413": _json("Error", "Body too large or too many instances."),
        "503": _json("Error", "No model could be loaded."),
    }
    text = {"text/plain": {"schema": {"type": "string"}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Titanic survival prediction",
            "version": "1",
            "description": "Logistic regression served from the model registry's production "
            "alias. Missing optional fields are imputed exactly as in training.",
        },
        "servers": [{"url": "/"}],
        "paths": {
            "/": {
                "post": {
                    "operationId": "predict",
                    "summary": "Predict survival for one or more passengers",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/PredictRequest"}
                            }
                        },
                    },
                    "responses": {
                        "200": _json("PredictResponse", "One prediction per instance, in order."),
                        **errors,
                    },
                },
                "get": {
                    "operationId": "webPage",
                    "summary": "A small web page that calls this API",
                    "responses": {
                        "200": {
                            "description": "HTML",
                            "content": {"text/html": {"schema": {"type": "string"}}},
                        }
                    },
                },
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    "responses": {
                        "200": _json("Health", "Serving a model."),
                        "503": _json("Health", "No model loaded."),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus text exposition",
                    "responses": {"200": {"description": "metrics", "content": text}},
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "responses": {
                        "200": {
                            "description": "This document",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Instance": instance_schema(),
                "PositionalInstance": {
                    "type": "array",
                    "description": "Legacy form: [" + ", ".join(schema.FEATURES) + "]",
                    "prefixItems": [field_schema(spec) for spec in schema.FIELDS],
                    "minItems": len(schema.FIELDS),
                    "maxItems": len(schema.FIELDS),
                },
                "PredictRequest": {
                    "anyOf": [
                        {
                            "type": "object",
                            "properties": {
                                "instances": {
                                    "type": "array",
                                    "items": {
                                        "anyOf": [
                                            {"$ref": "#/components/schemas/Instance"},
                                            {"$ref": "#/components/schemas/PositionalInstance"},
                                        ]
                                    },
                                    "minItems": 1,
                                    "maxItems": max_instances,
                                }
                            },
                            "required": ["instances"],
                            "additionalProperties": False,
                        },
                        {"$ref": "#/components/schemas/Instance"},
                        {"$ref": "#/components/schemas/PositionalInstance"},
                    ]
                },
                "PredictResponse": {
                    "type": "object",
                    "required": ["predictions", "model_version", "request_id"],
                    "properties": {
                        "predictions": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["survived", "probability"],
                                "properties": {
                                    "survived": {"enum": [0, 1]},
                                    "probability": {"type": "number", "minimum": 0, "maximum": 1},
                                },
                            },
                        },
                        "model_version": {"type": "integer"},
                        "request_id": {"type": "string"},
                    },
                },
                "Health": {
                    "type": "object",
                    "required": ["status"],
                    "properties": {
                        "status": {"enum": ["ok", "unavailable"]},
                        "model_version": {"type": ["integer", "null"]},
                        "uptime_seconds": {"type": "number"},
                    },
                },
                "Error": _error(),
            }
        },
    }
