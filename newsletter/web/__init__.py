"""The subscriber-facing service (`newsletter serve`): one Starlette app, the only module
tree that imports Starlette. `create_app` is its only constructor."""

from __future__ import annotations

from typing import Any

from newsletter.workspace import Workspace


def create_app(workspace: Workspace, store: Any = None) -> Any:
    from starlette.applications import Starlette

    from newsletter.store import open_store
    from newsletter.templating import environment
    from newsletter.tokens import Signer, load_secret
    from newsletter.web.routes import routes
    from newsletter.web.security import SecurityHeaders

    config = workspace.config
    app = Starlette(routes=routes())
    app.add_middleware(SecurityHeaders)
    app.state.workspace = workspace
    app.state.config = config
    app.state.store = store or open_store(workspace.database_url)
    app.state.signer = Signer(load_secret(workspace.root))
    app.state.pages = environment(workspace.templates_dir)
    return app


def run(app: Any, host: str, port: int) -> None:
    """Serve under uvicorn; X-Forwarded-* is trusted only from a proxy on this machine."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, proxy_headers=True, forwarded_allow_ips="127.0.0.1")
