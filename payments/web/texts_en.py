"""The driver's pages in English: the reference catalogue, every key the pages use."""

ENGLISH = {
    "app.name": "Charging",
    "language": "Language",
    "start.title": "Charge here",
    "start.connector": "Connector {connector}",
    "start.status": "Status",
    "start.price": "Price",
    "start.free": "Charging here is free.",
    "start.hold": (
        "To start, we reserve {hold} on your card. You pay only for what you use: "
        "the rest of the reservation is released as soon as the charge ends."
    ),
    "start.max_energy": "A session delivers at most {energy} kWh.",
    "start.email": "E-mail for the receipt (optional)",
    "start.pay": "Pay and charge",
    "start.start_free": "Start charging",
    "start.back_to_session": "You have a charging session in progress.",
    "start.view_session": "See your session",
    "price.per_kwh": "{amount} per kWh",
    "price.session_fee": "{amount} per session",
    "price.time_fee": "{amount} per minute of charging",
    "price.time_fee_after": "{amount} per minute of charging after {minutes} minutes",
    "price.idle_fee": (
        "{amount} per minute the car stays plugged in after charging, after {minutes} "
        "minutes, for at most {cap} minutes"
    ),
    "status.Available": "Available",
    "status.Preparing": "Cable plugged in",
    "status.Charging": "Charging",
    "status.SuspendedEV": "Paused by the car",
    "status.SuspendedEVSE": "Paused by the charger",
    "status.Finishing": "Finishing",
    "status.Reserved": "Reserved",
    "status.Unavailable": "Out of service",
    "status.Faulted": "Out of order",
    "status.unknown": "Unknown",
    "problem.unknown.title": "Charger not found",
    "problem.unknown.text": "There is no charger {charger} here. Check the code on the label.",
    "problem.offline.title": "Charger offline",
    "problem.offline.text": (
        "{charger} is not connected right now, so it cannot start a charge. "
        "Nothing was charged. Please try another charger or come back later."
    ),
    "problem.busy.title": "Connector busy",
    "problem.busy.text": "Connector {connector} of {charger} cannot be used now: {reason}.",
    "problem.disabled.title": "Payments are switched off",
    "problem.disabled.text": "Paying at this charger is not possible at the moment.",
    "problem.unavailable.title": "Payment is not possible right now",
    "problem.unavailable.text": (
        "We could not reach the payment service. Nothing was charged. Please try again in a minute."
    ),
    "problem.invalid.title": "Something is not right",
    "problem.invalid.text": "{message}",
    "invalid.connector": "There is no such connector.",
    "invalid.email": "“{email}” is not an e-mail address.",
    "busy.no_status": "the connector has not reported its status",
    "busy.status": "the connector is {status}",
    "busy.in_progress": "a charging session is in progress",
    "busy.reserved": "reserved by another driver",
    "busy.other": "it is not free",
    "problem.expired_form.title": "This page has expired",
    "problem.expired_form.text": "Please go back, reload the page and try again.",
    "problem.too_many.title": "Too many attempts",
    "problem.too_many.text": "Please wait a few minutes before trying again.",
    "problem.not_found.title": "Session not found",
    "problem.not_found.text": "This charging session does not exist.",
    "problem.back": "Back",
    "session.title": "Your charging session",
    "stage.payment": "Waiting for your payment",
    "stage.waiting_for_charger": "Payment received. Waiting for the charger",
    "stage.waiting_for_plug": "Payment received. Plug in your car to start",
    "stage.starting": "Starting the charge",
    "stage.charging": "Charging",
    "stage.stopping": "Stopping the charge",
    "stage.waiting_for_disconnect": "Charge finished. Please unplug your car",
    "stage.finishing": "Charge finished. Settling the payment",
    "stage.done": "Done. Thank you",
    "stage.failed": "This session did not go through",
    "session.energy": "Energy",
    "session.power": "Power",
    "session.cost": "Cost so far",
    "session.elapsed": "Time",
    "session.hold": "Reserved on your card",
    "session.reason": "Reason",
    "session.stop": "Stop charging",
    "session.cancel": "Cancel",
    "session.receipt": "See the receipt",
    "session.no_charge": "Nothing was charged: the reservation on your card has been released.",
    "session.refresh": "Refresh",
    "session.cost_final": "Cost",
    "session.offline": "The charger has lost its connection",
    "session.offline_money": (
        "The charger is offline. It keeps its meter readings and sends them when it is back; "
        "you pay only for the energy it reports, and the reservation stays on your card until "
        "then. If the charge stopped, unplug your car."
    ),
    "session.contact": "Questions? Contact {contact}",
    "session.start_again": "Start again",
    "start.here": "Your charging session at this connector is in progress.",
    "money.captured": "{captured} was charged to your card.",
    "money.captured_rest": (
        "{captured} was charged to your card; the rest of the reservation ({released}) has "
        "been released."
    ),
    "money.capturing": "Your payment is being taken for what you used.",
    "money.releasing": "The reservation on your card is being released. Nothing is charged.",
    "money.lost": "The reservation on your card was cancelled by the bank. Nothing was charged.",
    "money.checking": (
        "The reservation of {hold} on your card is being checked. You will be charged at most "
        "for what you used; the rest will be released."
    ),
    "reason.Expired": "The payment was not completed in time.",
    "reason.PaymentFailed": "The payment did not go through.",
    "reason.Cancelled": "The session was cancelled before the charge started.",
    "reason.StartRejected": "The charger refused to start the charge.",
    "reason.StartTimeout": "The charge did not start in time: was the car plugged in?",
    "reason.NeedsReview": "Settling the payment did not go through. We are checking it.",
    "reason.Resolved": "This session has been checked by the operator.",
    "problem.offline.ongoing": (
        "{charger} is not connected right now. Your charging session is still being followed: "
        "open it to see the figures and what happens to the money."
    ),
    "cancelled.title": "Payment cancelled",
    "cancelled.text": "No money was taken: any reservation on your card has been released.",
    "receipt.title": "Receipt",
    "receipt.charger": "Charger",
    "receipt.connector": "Connector",
    "receipt.started": "Started",
    "receipt.stopped": "Stopped",
    "receipt.energy": "Energy",
    "receipt.line.energy": "Energy ({energy} kWh)",
    "receipt.line.session_fee": "Session fee",
    "receipt.line.time_fee": "Time fee ({minutes} min)",
    "receipt.line.idle_fee": "Idle fee ({minutes} min)",
    "receipt.total": "Total",
    "receipt.captured": "Charged to your card",
    "receipt.released": "Released",
    "receipt.transaction": "Transaction",
    "receipt.reference": "Reference",
    "receipt.print": "Print",
    "receipt.email_sent": "Stripe e-mails a receipt to {email}.",
    "receipt.refund": "Refunded on {date}",
    "receipt.refund_pending": "Refund under way (asked on {date})",
    "receipt.paid": "Paid after refunds",
    "receipt.vat": "incl. VAT {rate} %",
    "operator.support": "Questions about this charge",
    "operator.terms": "Terms of use",
    "operator.privacy": "Privacy",
    "start.plug": "{plug} · up to {power} kW",
    "plug.Type1": "Type 1",
    "plug.Type2": "Type 2",
    "plug.CCS1": "CCS Combo 1",
    "plug.CCS2": "CCS Combo 2",
    "plug.CHAdeMO": "CHAdeMO",
    "plug.GB/T": "GB/T",
    "plug.Schuko": "Schuko",
    "plug.Tesla": "Tesla",
    "plug.Other": "Other plug",
    "start.model": "Charger: {model}",
    "start.incl_vat": "Prices include VAT ({rate} %).",
    "unpaid.title": "Your payment is not finished",
    "unpaid.text": (
        "Connector {connector} of {charger} is kept for you for {minutes} min at most. "
        "Continue to the payment, or cancel to free it for others."
    ),
    "unpaid.continue": "Continue to payment",
    "busy.unpaid_until": (
        "Someone is paying for it: if they do not finish, it is free again in at most "
        "{minutes} min."
    ),
    "busy.refreshing": "This page updates itself when the connector is free.",
}
