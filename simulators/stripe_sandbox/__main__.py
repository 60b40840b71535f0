"""`python -m simulators.stripe_sandbox`: run the sandbox until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from .sandbox import StripeSandbox


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.stripe_sandbox",
        description="A local, stateful, Stripe-compatible server (test mode only).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=12111, help="port (0 = any free port)")
    parser.add_argument("--webhook-url", help="endpoint that receives signed events")
    parser.add_argument(
        "--webhook-secret", default="whsec_test_sandbox", help="signing secret (whsec_...)"
    )
    parser.add_argument(
        "--public-url", help="base URL browsers use for the hosted page (default: base URL)"
    )
    parser.add_argument(
        "--state",
        metavar="FILE",
        help="keep the account in FILE (SQLite; a JSON state file of earlier versions is "
        "imported): loaded at start, each change written before it is answered",
    )
    parser.add_argument(
        "--enabled-events",
        metavar="TYPES",
        help="comma-separated event types the webhook endpoint gets (default: '*', all)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=("debug", "info", "warning", "error")
    )
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    enabled_events = None
    if args.enabled_events is not None:
        enabled_events = [t.strip() for t in args.enabled_events.split(",") if t.strip()]
    sandbox = StripeSandbox(
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        public_url=args.public_url,
        state_path=args.state,
        enabled_events=enabled_events,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await sandbox.start(host=args.host, port=args.port)
    # The first line of output is the base URL, for scripts that start the sandbox.
    print(sandbox.base_url, flush=True)
    try:
        await stop.wait()
    finally:
        await sandbox.stop()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
