"""In-process stand-ins for cloud services, reached through the real client libraries."""
