"""ASGI factory for uvicorn (`node.asgi:create`): reads the config named by $DSGO_CONFIG."""

from __future__ import annotations

from fastapi import FastAPI

from node.app import create_app
from node.config import load_settings


def create() -> FastAPI:
    from node.engine import worker_dies_with_master

    worker_dies_with_master()  # a worker of `dsgo serve` ends with it, like the engine does
    return create_app(load_settings())
