"""The demo: its page (static ``/``), and with ``--demo`` a login that hands out tokens
and starter coins, and the seeded demo products.

Routes (docs/protocol.md): ``/demo/login`` (``--demo`` only; without it every
``/demo/...`` is ``not_found``), ``/`` and the page's static files.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from aiohttp import web

from ..errors import BadRequest, NotFound
from ..services import shop, wallet
from ..store.facade import store_errors
from ..wire import tokens
from .base import NODE, Node, body_args, json_body

DEMO_PRODUCTS = (
    ("demo_tee", "livesrv T-shirt", 300, 50),
    ("demo_mug", "Coffee mug", 150, 100),
    ("demo_cap", "Cap", 200, 30),
)
DEMO_SELLER = "demo_shop"


def client_demo_dir() -> Path:
    """The demo page: ``client_demo/`` of the repository, shipped inside the package (a link
    in a checkout, the files themselves in a wheel)."""
    return (Path(__file__).resolve().parent.parent / "client_demo").resolve()


async def demo_login(request: web.Request) -> web.Response:
    node = request.app[NODE]
    args = body_args(await json_body(request), "demo_login")
    user, role = args["user"], args["role"] or "viewer"
    token = tokens.issue(node.secret, user, role, 24 * 3600, args["birth_year"], args["region"])
    w = await wallet.grant(
        node.backend, user, node.settings.demo_coins, f"demo-starter:{user}", "demo starter coins"
    )
    return web.json_response({"token": token, "user": user, "role": role, "coins": w["coins"]})


async def not_found(request: web.Request) -> web.Response:
    raise NotFound(f"no route {request.path}")


async def seed_demo(node: Node) -> None:
    """Seed the demo products (idempotent)."""
    admin = tokens.Identity("admin", "admin")
    for product, title, price, stock in DEMO_PRODUCTS:
        with contextlib.suppress(BadRequest):  # already seeded
            await shop.create(
                node.backend,
                admin,
                product=product,
                title=title,
                seller=DEMO_SELLER,
                price=price,
                stock=stock,
                commission=None,
            )


async def index(request: web.Request) -> web.StreamResponse:
    page = client_demo_dir() / "index.html"
    if not page.exists():
        return web.Response(text="livesrv is running; the demo page is not installed\n")
    return web.FileResponse(page)


def routes(app: web.Application) -> None:
    """Register ``/demo/login`` and the seeding of the demo products (``--demo``), or a
    ``not_found`` for every ``/demo/...`` and method."""
    r = app.router
    if app[NODE].settings.demo:
        r.add_post("/demo/login", demo_login)

        async def seed(app: web.Application) -> None:
            async with store_errors():
                await seed_demo(app[NODE])

        app.on_startup.append(seed)
    else:
        # Without --demo the demo routes do not exist, for every method (the static files
        # under "/" would otherwise answer 405 to a POST).
        r.add_route("*", "/demo/{tail:.*}", not_found)


def page_routes(app: web.Application) -> None:
    """Register the demo page: ``/`` and its static files. Last: the static files answer
    every path under ``/`` that no earlier route took."""
    r = app.router
    r.add_get("/", index)
    static = client_demo_dir()
    if static.is_dir():
        r.add_static("/", static, show_index=False)
