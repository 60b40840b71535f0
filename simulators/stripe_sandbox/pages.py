"""HTML of the hosted payment page: small, mobile-friendly, no external assets.

Inputs carry stable `name` and `id` attributes (`email`, `cardNumber`, `cardExpiry`,
`cardCvc`, `billingName`, button `submit`; `authenticate-complete` and
`authenticate-fail` on the 3D Secure page) so browser tests can fill them in.
"""

from __future__ import annotations

from html import escape

from . import money
from .resources import JSON

_STYLE = """
*{box-sizing:border-box}
body{margin:0;font:16px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:#1a1a1a;background:#f6f8fa}
main{max-width:28rem;margin:0 auto;padding:1.25rem}
.badge{display:inline-block;font-size:.75rem;font-weight:600;color:#a04100;
background:#ffde92;border-radius:4px;padding:.1rem .4rem;margin-left:.5rem}
h1{font-size:1.1rem;margin:0 0 1rem}
.total{font-size:2rem;font-weight:700;margin:.25rem 0 1rem}
ul{list-style:none;padding:0;margin:0 0 1.5rem}
li{display:flex;justify-content:space-between;padding:.4rem 0;border-bottom:1px solid #e3e8ee}
label{display:block;font-size:.9rem;margin:.9rem 0 .3rem;color:#4f566b}
input{width:100%;font-size:1rem;padding:.7rem;border:1px solid #d0d7de;border-radius:6px;
background:#fff}
input:focus{outline:2px solid #635bff;border-color:#635bff}
.row{display:flex;gap:.75rem}.row>div{flex:1}
button{width:100%;font-size:1.05rem;font-weight:600;color:#fff;background:#635bff;border:0;
border-radius:6px;padding:.85rem;margin-top:1.25rem;cursor:pointer}
button.secondary{background:#fff;color:#df1b41;border:1px solid #df1b41}
.error{color:#df1b41;background:#fff0f2;border:1px solid #f5c2cb;border-radius:6px;
padding:.6rem .75rem;margin:1rem 0 0}
.hint{font-size:.8rem;color:#6a7383;margin-top:1.5rem}
a{color:#635bff}
"""


def _document(title: str, body: str, locale: str | None = None) -> str:
    """`locale`: the session's, recorded as the page's language (the texts stay English)."""
    lang = locale if locale and locale != "auto" else "en"
    return (
        "<!doctype html>\n"
        f'<html lang="{escape(lang)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f'<body><main><h1>Stripe sandbox<span class="badge">TEST MODE</span></h1>'
        f"{body}</main></body></html>\n"
    )


def _summary(session: JSON, line_items: list[JSON]) -> str:
    currency = session["currency"]
    rows = "".join(
        f"<li><span>{escape(item['description'])}"
        f"{' &times; ' + str(item['quantity']) if item['quantity'] > 1 else ''}</span>"
        f"<span>{escape(money.display(item['amount_total'], currency))}</span></li>"
        for item in line_items
    )
    total = escape(money.display(session["amount_total"], currency))
    return f'<p class="total" id="amount">{total}</p><ul id="line-items">{rows}</ul>'


def _error(message: str | None) -> str:
    if message is None:
        return ""
    return f'<p class="error" id="error" role="alert">{escape(message)}</p>'


def _input(name: str, label: str, *, value: str = "", kind: str = "text", extra: str = "") -> str:
    return (
        f'<label for="{name}">{escape(label)}</label>'
        f'<input id="{name}" name="{name}" type="{kind}" value="{escape(value)}" {extra}>'
    )


def checkout(
    session: JSON,
    line_items: list[JSON],
    *,
    error: str | None = None,
    values: dict[str, str] | None = None,
) -> str:
    """The payment form. After an error, the fields keep what was typed, except the card."""
    values = values or {}
    locked_email = session["customer_email"]
    email = _input(
        "email",
        "Email",
        value=locked_email or values.get("email", ""),
        kind="email",
        extra='autocomplete="email" required' + (" readonly" if locked_email else ""),
    )
    card = _input(
        "cardNumber",
        "Card number",
        extra='inputmode="numeric" autocomplete="cc-number" placeholder="1234 1234 1234 1234" '
        "required",
    )
    expiry = _input(
        "cardExpiry",
        "Expiration",
        value=values.get("cardExpiry", ""),
        extra='inputmode="numeric" autocomplete="cc-exp" placeholder="MM / YY" required',
    )
    cvc = _input(
        "cardCvc",
        "CVC",
        extra='inputmode="numeric" autocomplete="cc-csc" placeholder="CVC" required',
    )
    name = _input(
        "billingName",
        "Cardholder name",
        value=values.get("billingName", ""),
        extra='autocomplete="cc-name" required',
    )
    cancel = ""
    if session["cancel_url"]:
        cancel = (
            f'<p><a id="cancel" href="{escape(session["cancel_url"])}">Cancel and go back</a></p>'
        )
    body = (
        _summary(session, line_items)
        + f'<form method="post" action="/pay/{escape(session["id"])}" id="payment-form">'
        + email
        + card
        + f'<div class="row"><div>{expiry}</div><div>{cvc}</div></div>'
        + name
        + _error(error)
        + '<button id="submit" type="submit">Pay</button></form>'
        + cancel
        + '<p class="hint">Test cards: 4242 4242 4242 4242 succeeds, 4000 0000 0000 0002 is '
        "declined, 4000 0000 0000 9995 has insufficient funds, 4000 0025 0000 3155 asks for "
        "authentication. Any future date and any CVC.</p>"
    )
    return _document("Pay with card", body, session.get("locale"))


def authenticate(session: JSON) -> str:
    """Stand-in for the issuer's 3D Secure challenge."""
    amount = escape(money.display(session["amount_total"], session["currency"]))
    body = (
        "<h2>3D Secure 2 test page</h2>"
        f'<p>Authenticate the payment of <strong id="amount">{amount}</strong>.</p>'
        f'<form method="post" action="/pay/{escape(session["id"])}/authenticate">'
        '<button id="authenticate-complete" name="action" value="complete" type="submit">'
        "Complete</button>"
        '<button id="authenticate-fail" class="secondary" name="action" value="fail" '
        'type="submit">Fail</button></form>'
    )
    return _document("Authenticate payment", body)


def message(title: str, text: str, *, element_id: str) -> str:
    """A page that only says something: session complete, expired, not found, paid."""
    return _document(title, f'<h2 id="{element_id}">{escape(title)}</h2><p>{escape(text)}</p>')


def closed(session: JSON) -> str:
    if session["status"] == "expired":
        return message(
            "This Checkout Session has expired",
            "The payment page is no longer available: it expired. Return to the merchant "
            "to start again.",
            element_id="expired",
        )
    return message(
        "This Checkout Session is complete",
        "Your payment details have already been submitted for this Checkout Session.",
        element_id="complete",
    )
