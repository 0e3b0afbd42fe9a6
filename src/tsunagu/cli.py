"""The ``tsunagu`` command."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

cli = typer.Typer(
    help="Tsunagu: consortium ledger for the municipalities of Tama and the islands.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DataOpt = Annotated[Path, typer.Option("--data", help="The node's data folder.")]
HostOpt = Annotated[str, typer.Option("--host", help="Address to listen on.")]
PortOpt = Annotated[int, typer.Option("--port", help="Port to listen on.")]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--public-base-url", help="Base URL printed in QR codes and links (behind a proxy)."
    ),
]
MaxTxsOpt = Annotated[
    int, typer.Option("--block-max-txs", min=1, help="Cut a block at this many txs.")
]
MaxWaitOpt = Annotated[
    int,
    typer.Option("--block-max-wait-ms", min=1, help="Cut a block this long after its first tx."),
]


def _open_node(data: Path, max_txs: int = 500, max_wait_ms: int = 50):
    from tsunagu.identity.private import PrivateStore
    from tsunagu.node.node import Node
    from tsunagu.node.orderer import SoloOrderer
    from tsunagu.platform import discover_apps, platform_contracts

    apps = discover_apps()
    node = Node(data, platform_contracts(apps), SoloOrderer(max_txs, max_wait_ms / 1000))
    return node, PrivateStore(data), apps


# The cyclic garbage collector's first-generation threshold for the server (Python's default
# is 700 allocations). Each request allocates hundreds of objects, so at the default the
# collector runs every request or two and took about a sixth of the event loop's time.
GC_GEN0_THRESHOLD = 10_000


def _tune_gc() -> None:
    """Collect less often, and never re-scan what start-up created (modules, the app, its
    routes): frozen objects stay alive as they would anyway, and cyclic garbage made while
    serving is still collected, in fewer and larger passes."""
    import gc

    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


def _serve(node, private, apps, host: str, port: int, public_base_url: str | None) -> None:
    import uvicorn

    from tsunagu.web.app import create_app

    node.start()
    app = create_app(node, private, apps, public_base_url=public_base_url)
    _tune_gc()
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    finally:
        node.stop()


@cli.command()
def demo(
    data: DataOpt = Path("demo-data"),
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
    demo_password: Annotated[
        str, typer.Option("--demo-password", help="Password of every demo account.")
    ] = "tsunagu-demo",
    public_base_url: BaseUrlOpt = None,
) -> None:
    """Create the demo consortium on first start, then serve it."""
    from tsunagu.demo import ACCOUNTS, create_demo
    from tsunagu.node.node import CHAIN_DB
    from tsunagu.platform import discover_apps

    if (data / CHAIN_DB).exists():
        node, private, apps = _open_node(data)
        typer.echo(f"Opening the demo consortium in {data}")
    else:
        typer.echo(f"Creating the demo consortium in {data} ...")
        apps = discover_apps()
        node, private = create_demo(data, None, apps, demo_password)
        node.stop()
        node, private, apps = _open_node(data)
    typer.echo(f"Tsunagu demo: http://{host}:{port}/  (API docs: http://{host}:{port}/docs)")
    typer.echo("Accounts (password: the demo password, default tsunagu-demo):")
    for username, _name, org, roles in ACCOUNTS:
        typer.echo(f"  {username:<13} {'/'.join(roles):<20} {org}")
    _serve(node, private, apps, host, port, public_base_url)


@cli.command()
def serve(
    data: DataOpt,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
    public_base_url: BaseUrlOpt = None,
    block_max_txs: MaxTxsOpt = 500,
    block_max_wait_ms: MaxWaitOpt = 50,
) -> None:
    """Serve an existing node's data folder."""
    from tsunagu.node.node import CHAIN_DB

    if not (data / CHAIN_DB).exists():
        typer.echo(f"error: {data / CHAIN_DB} does not exist", err=True)
        raise typer.Exit(2)
    node, private, apps = _open_node(data, block_max_txs, block_max_wait_ms)
    _serve(node, private, apps, host, port, public_base_url)


@cli.command()
def verify(data: DataOpt) -> None:
    """Re-check everything: signatures, hash chain, Merkle log and the replayed state.

    Exits 0 when intact; otherwise 1, printing the first bad block's height and the problem.
    """
    from tsunagu.node.verify import verify_chain
    from tsunagu.platform import discover_apps, platform_contracts

    def progress(done: int, total: int) -> None:
        typer.echo(f"\r  {done}/{total} blocks", nl=False, err=True)

    report = verify_chain(data, platform_contracts(discover_apps()), progress=progress)
    typer.echo("", err=True)
    if report.ok:
        typer.echo(
            f"OK: {report.blocks} blocks, {report.transactions} transactions verified "
            f"in {report.seconds:.2f} s"
        )
        raise typer.Exit(0)
    where = f"block {report.height}" if report.height is not None else "chain"
    typer.echo(f"FAILED at {where}: {report.problem}")
    raise typer.Exit(1)


def _mount_app_commands() -> None:
    from tsunagu.platform import discover_apps

    for app in discover_apps():
        if app.cli is not None:
            app.cli(cli)


_mount_app_commands()


def main() -> None:
    sys.exit(cli())


if __name__ == "__main__":
    main()
