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


def _open_node(data: Path, max_txs: int = 500, max_wait_ms: int = 50, engine=None):
    from tsunagu.identity.private import PrivateStore
    from tsunagu.node.node import Node
    from tsunagu.node.orderer import SoloOrderer
    from tsunagu.platform import discover_apps, platform_contracts

    apps = discover_apps()
    engine = engine or SoloOrderer(max_txs, max_wait_ms / 1000)
    node = Node(data, platform_contracts(apps), engine)
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
    from tsunagu.web.fasthttp import protocol

    node.start()
    if node.consortium is not None:
        node.consortium.start()
    app = create_app(node, private, apps, public_base_url=public_base_url)
    _tune_gc()
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            http=protocol(app),  # POST /api/v1/tx answered without an ASGI task
        )
    finally:
        if node.consortium is not None:
            node.consortium.stop()
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
        local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        base_url = public_base_url or f"http://{local}:{port}"  # for files the demo writes
        node, private = create_demo(data, None, apps, demo_password, base_url=base_url)
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
    orderer: Annotated[
        str, typer.Option("--orderer", help="solo (this node alone) or etcd (a consortium).")
    ] = "solo",
    etcd_endpoints: Annotated[
        str | None,
        typer.Option("--etcd-endpoints", help="etcd client URLs, comma-separated."),
    ] = None,
    peers: Annotated[
        str | None,
        typer.Option("--peers", help="Other nodes' base URLs, comma-separated."),
    ] = None,
    advertise_url: Annotated[
        str | None,
        typer.Option("--advertise-url", help="This node's base URL as its peers reach it."),
    ] = None,
    role: Annotated[
        str, typer.Option("--role", help="voting (runs an etcd member) or following.")
    ] = "voting",
    audit_interval: Annotated[
        float,
        typer.Option("--audit-interval", help="Seconds between full comparisons with peers."),
    ] = 30.0,
    etcd_window: Annotated[
        int,
        typer.Option(
            "--etcd-window",
            min=2,
            envvar="TSUNAGU_ETCD_WINDOW",
            help="Blocks kept in etcd; older ones come from peers.",
        ),
    ] = 2000,
    commit_process: Annotated[
        bool,
        typer.Option(
            "--commit-process/--no-commit-process",
            help="solo: execute and write blocks in a child process (uses a second core).",
        ),
    ] = False,
) -> None:
    """Serve an existing node's data folder."""
    from tsunagu.node.node import CHAIN_DB

    if not (data / CHAIN_DB).exists():
        typer.echo(f"error: {data / CHAIN_DB} does not exist", err=True)
        raise typer.Exit(2)
    if orderer not in ("solo", "etcd") or role not in ("voting", "following"):
        typer.echo("error: --orderer is solo or etcd; --role is voting or following", err=True)
        raise typer.Exit(2)
    if orderer == "etcd" and not etcd_endpoints:
        typer.echo("error: --orderer etcd needs --etcd-endpoints", err=True)
        raise typer.Exit(2)
    from tsunagu.node.datalock import DataDirBusy, DataLock

    try:
        # Held until this process exits: `tsunagu repair` refuses a folder a node serves.
        lock = DataLock(data, "tsunagu serve")
    except DataDirBusy as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    peer_urls = [u.strip() for u in (peers or "").split(",") if u.strip()]
    url = advertise_url or f"http://{host}:{port}"
    if orderer == "solo":
        engine = None
        if commit_process:
            from tsunagu.node.commitproc import ProcessOrderer

            engine = ProcessOrderer(block_max_txs, block_max_wait_ms / 1000)
        node, private, apps = _open_node(data, block_max_txs, block_max_wait_ms, engine)
    else:
        from tsunagu.node.peers import PeerMonitor
        from tsunagu.node.replicator import EtcdOrderer

        monitor: PeerMonitor | None = None
        engine = EtcdOrderer(
            [u.strip() for u in (etcd_endpoints or "").split(",") if u.strip()],
            block_max_txs,
            block_max_wait_ms / 1000,
            window=etcd_window,
            advertise={"url": url, "role": role},
            peer_urls=lambda: monitor.urls() if monitor else peer_urls,
        )
        node, private, apps = _open_node(data, block_max_txs, block_max_wait_ms, engine)
        monitor = PeerMonitor(node, url, role, peer_urls, engine, audit_interval=audit_interval)
        node.consortium = monitor
    try:
        _serve(node, private, apps, host, port, public_base_url)
    finally:
        lock.release()


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


cluster_cli = typer.Typer(help="A local consortium: etcd members and nodes on this machine.")
cli.add_typer(cluster_cli, name="cluster")
DirOpt = Annotated[Path, typer.Option("--dir", help="The consortium's folder.")]


@cluster_cli.command("up")
def cluster_up(
    dir: DirOpt,
    nodes: Annotated[int, typer.Option("--nodes", min=1, max=7, help="Voting nodes.")] = 3,
    base_port: Annotated[int, typer.Option("--base-port", help="First node's port.")] = 8100,
    followers: Annotated[int, typer.Option("--followers", min=0, help="Following nodes.")] = 0,
    demo_password: Annotated[
        str, typer.Option("--demo-password", help="Password of every demo account.")
    ] = "tsunagu-demo",
) -> None:
    """Start N etcd members and N voting nodes (and K following nodes) with the demo
    consortium; return once every node answers. Writes DIR/cluster.json."""
    from tsunagu import cluster

    try:
        found = cluster.up(dir, nodes, base_port, followers, demo_password)
    except RuntimeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for node in found["nodes"]:
        typer.echo(f"{node['id']:<18} {node['role']:<9} {node['url']}")
    for member in found["etcd"]:
        typer.echo(f"{member['name']:<18} {'etcd':<9} {member['client_url']}")
    typer.echo(f"Consortium: {(dir / cluster.CLUSTER_FILE).resolve()}")


@cluster_cli.command("down")
def cluster_down(dir: DirOpt) -> None:
    """Stop every process of the consortium in DIR."""
    from tsunagu import cluster

    if not (dir / cluster.CLUSTER_FILE).exists():
        typer.echo(f"error: no {cluster.CLUSTER_FILE} in {dir}", err=True)
        raise typer.Exit(2)
    try:
        stopped = cluster.down(dir)
    except RuntimeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Stopped ({len(stopped)} processes).")


@cli.command()
def repair(
    data: DataOpt,
    from_: Annotated[
        str, typer.Option("--from", help="Peers' base URLs to restore from, comma-separated.")
    ],
) -> None:
    """Restore a stopped node's lost or damaged chain from its peers, keeping its private
    data; every block is checked, and nothing is taken on one peer's word when two answer."""
    from tsunagu.node.repair import RepairFailed, repair_node
    from tsunagu.platform import discover_apps, platform_contracts

    urls = [u.strip() for u in from_.split(",") if u.strip()]
    try:
        report = repair_node(data, urls, platform_contracts(discover_apps()), echo=typer.echo)
    except RepairFailed as exc:
        typer.echo(f"FAILED: {exc}")
        raise typer.Exit(1) from None
    typer.echo(
        f"OK: {report['blocks']} blocks restored from {', '.join(report['sources'])}; "
        f"verify passed in {report['verify_seconds']:.2f} s"
    )


def _mount_app_commands() -> None:
    from tsunagu.platform import discover_apps

    for app in discover_apps():
        if app.cli is None:
            continue
        # One app's broken command must not take the whole `tsunagu` command down: build
        # its commands on a scratch group first (typer resolves every annotation then).
        trial = typer.Typer()
        try:
            app.cli(trial)
            typer.main.get_command(trial)
        except Exception as exc:
            print(f"warning: the {app.name} app's commands are unavailable: {exc}", file=sys.stderr)
            continue
        app.cli(cli)


_mount_app_commands()


def main() -> None:
    sys.exit(cli())


if __name__ == "__main__":
    main()
