"""HTTP layer: parse with pydantic, call one domain function, serialise."""
