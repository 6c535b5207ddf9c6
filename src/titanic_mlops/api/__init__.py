"""The HTTP side: functions-framework targets, routing, OpenAPI document, web page."""
