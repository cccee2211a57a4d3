"""ASGI factory for uvicorn (`node.asgi:create`): reads the config named by $DSGO_CONFIG."""

from __future__ import annotations

from fastapi import FastAPI

from node.app import create_app
from node.config import load_settings


def create() -> FastAPI:
    return create_app(load_settings())
