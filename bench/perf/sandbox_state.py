"""The Stripe sandbox's state file: the time of a mutating request as the account grows.

    python -m bench.perf.sandbox_state [--sessions 300] [--window 50] [--memory]

The sandbox runs in its own process (`python -m simulators.stripe_sandbox`), with a state
file in a temporary directory (none with `--memory`). Each session is created (POST
/v1/checkout/sessions), paid on the hosted page (POST /pay/{id}) and captured (POST
/v1/payment_intents/{id}/capture); those three requests are timed at the client, one at a
time. Prints the mean and 95th percentile over the first and the last `window` sessions,
and the size of the state on disk.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
AUTH = {"Authorization": "Bearer sk_test_bench"}
SESSION = {
    "mode": "payment",
    "line_items[0][price_data][currency]": "eur",
    "line_items[0][price_data][unit_amount]": "2000",
    "line_items[0][price_data][product_data][name]": "Charging session CP-1/1",
    "line_items[0][quantity]": "1",
    "payment_intent_data[capture_method]": "manual",
    "payment_intent_data[metadata][reservation]": "r-1",
    "metadata[reservation]": "r-1",
    "success_url": "http://127.0.0.1:9/done?session_id={CHECKOUT_SESSION_ID}",
    "customer_email": "driver@example.com",
}
CARD = {
    "email": "driver@example.com",
    "cardNumber": "4242 4242 4242 4242",
    "cardExpiry": "12 / 34",
    "cardCvc": "123",
    "billingName": "Jane Driver",
}


async def _timed(http: aiohttp.ClientSession, url: str, data: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    async with http.post(url, data=data, headers=AUTH, allow_redirects=False) as response:
        body = await response.text()
        assert response.status in (200, 303), (response.status, body)
    return time.perf_counter() - started, body


async def run(sessions: int, window: int, memory: bool) -> None:
    with tempfile.TemporaryDirectory() as directory:
        state = Path(directory) / "stripe-sandbox.db"
        extra = [] if memory else ["--state", str(state)]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "simulators.stripe_sandbox", "--port", "0",
            "--log-level", "warning", *extra, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert process.stdout is not None
        base = (await process.stdout.readline()).decode().strip()
        per_session: list[list[float]] = []
        try:
            async with aiohttp.ClientSession() as http:
                for _ in range(sessions):
                    took, body = await _timed(http, f"{base}/v1/checkout/sessions", SESSION)
                    session_id = body.split('"id": "', 1)[1].split('"', 1)[0]
                    paid, _ = await _timed(http, f"{base}/pay/{session_id}", CARD)
                    async with http.get(
                        f"{base}/v1/checkout/sessions/{session_id}", headers=AUTH
                    ) as response:
                        intent_id = (await response.json())["payment_intent"]
                    captured, _ = await _timed(
                        http, f"{base}/v1/payment_intents/{intent_id}/capture", {}
                    )
                    per_session.append([took, paid, captured])
        finally:
            process.terminate()
            await process.wait()
            size = _size(Path(directory))
    print(f"{'no state file' if memory else 'state file'}: {sessions} sessions")
    for label, chunk in (
        (f"sessions 1-{window}", per_session[:window]),
        (f"sessions {sessions - window + 1}-{sessions}", per_session[-window:]),
    ):
        times = sorted(t * 1000 for row in chunk for t in row)
        p95 = times[int(len(times) * 0.95) - 1]
        print(f"  {label}: mean {statistics.fmean(times):.2f} ms, p95 {p95:.2f} ms")
    print(f"  on disk at the end: {size / 1e6:.2f} MB")


def _size(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.iterdir() if path.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.perf.sandbox_state")
    parser.add_argument("--sessions", type=int, default=300)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--memory", action="store_true", help="no state file")
    args = parser.parse_args()
    asyncio.run(run(args.sessions, args.window, args.memory))


if __name__ == "__main__":
    main()
