"""The driver's pages in German: the same keys and placeholders as the English catalogue."""

GERMAN = {
    "app.name": "Laden",
    "language": "Sprache",
    "start.title": "Hier laden",
    "start.connector": "Anschluss {connector}",
    "start.status": "Status",
    "start.price": "Preis",
    "start.free": "Das Laden ist hier kostenlos.",
    "start.hold": (
        "Zum Start reservieren wir {hold} auf Ihrer Karte. Sie zahlen nur, was Sie laden: "
        "Der Rest der Reservierung wird freigegeben, sobald der Ladevorgang endet."
    ),
    "start.max_energy": "Ein Ladevorgang liefert höchstens {energy} kWh.",
    "start.email": "E-Mail für die Quittung (optional)",
    "start.pay": "Bezahlen und laden",
    "start.start_free": "Laden starten",
    "start.back_to_session": "Sie haben einen laufenden Ladevorgang.",
    "start.view_session": "Zum Ladevorgang",
    "price.per_kwh": "{amount} pro kWh",
    "price.per_kwh_band": "{amount} pro kWh {band}",
    "price.per_kwh_other": "{amount} pro kWh zu übrigen Zeiten",
    "price.time_fee_excluded": "keine Zeitgebühr {span}",
    "price.session_fee": "{amount} pro Ladevorgang",
    "price.time_fee": "{amount} pro Minute Ladezeit",
    "price.time_fee_after": "{amount} pro Minute Ladezeit nach {minutes} Minuten",
    "price.idle_fee": (
        "{amount} pro Minute, die das Auto nach dem Laden angesteckt bleibt, nach {minutes} "
        "Minuten, für höchstens {cap} Minuten"
    ),
    "status.Available": "Frei",
    "status.Preparing": "Kabel eingesteckt",
    "status.Charging": "Lädt",
    "status.SuspendedEV": "Vom Auto pausiert",
    "status.SuspendedEVSE": "Von der Ladestation pausiert",
    "status.Finishing": "Wird beendet",
    "status.Reserved": "Reserviert",
    "status.Unavailable": "Außer Betrieb",
    "status.Faulted": "Gestört",
    "status.unknown": "Unbekannt",
    "problem.unknown.title": "Ladestation nicht gefunden",
    "problem.unknown.text": (
        "Hier gibt es keine Ladestation {charger}. Prüfen Sie den Code auf dem Aufkleber."
    ),
    "problem.offline.title": "Ladestation offline",
    "problem.offline.text": (
        "{charger} ist gerade nicht verbunden und kann deshalb keinen Ladevorgang starten. "
        "Es wurde nichts berechnet. Bitte nutzen Sie eine andere Ladestation oder kommen Sie "
        "später wieder."
    ),
    "problem.busy.title": "Anschluss belegt",
    "problem.busy.text": (
        "Anschluss {connector} von {charger} kann gerade nicht genutzt werden: {reason}."
    ),
    "problem.disabled.title": "Bezahlen ist ausgeschaltet",
    "problem.disabled.text": "An dieser Ladestation kann gerade nicht bezahlt werden.",
    "problem.unavailable.title": "Bezahlen ist gerade nicht möglich",
    "problem.unavailable.text": (
        "Der Zahlungsdienst war nicht erreichbar. Es wurde nichts berechnet. Bitte versuchen "
        "Sie es in einer Minute noch einmal."
    ),
    "problem.invalid.title": "Etwas stimmt nicht",
    "problem.invalid.text": "{message}",
    "invalid.connector": "Diesen Anschluss gibt es nicht.",
    "invalid.email": "„{email}“ ist keine E-Mail-Adresse.",
    "busy.no_status": "der Anschluss hat seinen Status noch nicht gemeldet",
    "busy.status": "der Anschluss meldet „{status}“",
    "busy.in_progress": "ein Ladevorgang läuft",
    "busy.reserved": "von einer anderen Person reserviert",
    "busy.other": "er ist nicht frei",
    "problem.expired_form.title": "Diese Seite ist abgelaufen",
    "problem.expired_form.text": (
        "Bitte gehen Sie zurück, laden Sie die Seite neu und versuchen Sie es noch einmal."
    ),
    "problem.too_many.title": "Zu viele Versuche",
    "problem.too_many.text": (
        "Bitte warten Sie ein paar Minuten, bevor Sie es noch einmal versuchen."
    ),
    "problem.not_found.title": "Ladevorgang nicht gefunden",
    "problem.not_found.text": "Diesen Ladevorgang gibt es nicht.",
    "problem.back": "Zurück",
    "session.title": "Ihr Ladevorgang",
    "stage.payment": "Wartet auf Ihre Zahlung",
    "stage.waiting_for_charger": "Zahlung erhalten. Wartet auf die Ladestation",
    "stage.waiting_for_plug": "Zahlung erhalten. Stecken Sie Ihr Auto an, um zu starten",
    "stage.starting": "Ladevorgang startet",
    "stage.charging": "Lädt",
    "stage.stopping": "Ladevorgang wird beendet",
    "stage.waiting_for_disconnect": "Laden beendet. Bitte stecken Sie Ihr Auto ab",
    "stage.finishing": "Laden beendet. Die Zahlung wird abgerechnet",
    "stage.done": "Fertig. Vielen Dank",
    "stage.failed": "Dieser Ladevorgang kam nicht zustande",
    "session.energy": "Energie",
    "session.power": "Leistung",
    "session.cost": "Kosten bisher",
    "session.elapsed": "Dauer",
    "session.hold": "Auf Ihrer Karte reserviert",
    "session.reason": "Grund",
    "session.stop": "Laden beenden",
    "session.cancel": "Abbrechen",
    "session.receipt": "Zur Quittung",
    "session.no_charge": (
        "Es wurde nichts berechnet: Die Reservierung auf Ihrer Karte wurde freigegeben."
    ),
    "session.refresh": "Aktualisieren",
    "session.cost_final": "Kosten",
    "session.offline": "Die Ladestation hat keine Verbindung",
    "session.offline_money": (
        "Die Ladestation ist offline. Sie speichert ihre Zählerstände und sendet sie, sobald "
        "sie wieder verbunden ist; Sie zahlen nur die gemeldete Energie, und die Reservierung "
        "bleibt bis dahin auf Ihrer Karte. Wenn der Ladevorgang beendet ist, stecken Sie Ihr "
        "Auto ab."
    ),
    "session.contact": "Fragen? Kontakt: {contact}",
    "session.start_again": "Neu starten",
    "start.here": "Ihr Ladevorgang an diesem Anschluss läuft.",
    "money.captured": "{captured} wurden von Ihrer Karte abgebucht.",
    "money.captured_rest": (
        "{captured} wurden von Ihrer Karte abgebucht; der Rest der Reservierung ({released}) "
        "wurde freigegeben."
    ),
    "money.capturing": "Ihre Zahlung für die genutzte Energie wird abgebucht.",
    "money.releasing": (
        "Die Reservierung auf Ihrer Karte wird freigegeben. Es wird nichts berechnet."
    ),
    "money.lost": (
        "Die Reservierung auf Ihrer Karte wurde von der Bank storniert. Es wurde nichts berechnet."
    ),
    "money.checking": (
        "Die Reservierung von {hold} auf Ihrer Karte wird geprüft. Berechnet wird höchstens, "
        "was Sie genutzt haben; der Rest wird freigegeben."
    ),
    "reason.Expired": "Die Zahlung wurde nicht rechtzeitig abgeschlossen.",
    "reason.PaymentFailed": "Die Zahlung ist nicht durchgegangen.",
    "reason.Cancelled": "Der Ladevorgang wurde vor dem Start abgebrochen.",
    "reason.StartRejected": "Die Ladestation hat den Start abgelehnt.",
    "reason.StartTimeout": (
        "Der Ladevorgang hat nicht rechtzeitig begonnen: War das Auto eingesteckt?"
    ),
    "reason.NeedsReview": "Die Abrechnung ist nicht durchgegangen. Wir prüfen sie.",
    "reason.Resolved": "Dieser Ladevorgang wurde vom Betreiber geprüft.",
    "problem.offline.ongoing": (
        "{charger} ist gerade nicht verbunden. Ihr Ladevorgang wird weiter verfolgt: Öffnen Sie "
        "ihn, um die Werte zu sehen und was mit dem Geld geschieht."
    ),
    "cancelled.title": "Zahlung abgebrochen",
    "cancelled.text": (
        "Es wurde kein Geld abgebucht: Eine Reservierung auf Ihrer Karte wurde freigegeben."
    ),
    "receipt.title": "Quittung",
    "receipt.charger": "Ladestation",
    "receipt.connector": "Anschluss",
    "receipt.started": "Beginn",
    "receipt.stopped": "Ende",
    "receipt.energy": "Energie",
    "receipt.line.energy": "Energie ({energy} kWh)",
    "receipt.line.session_fee": "Grundgebühr",
    "receipt.line.time_fee": "Zeitgebühr ({minutes} Min.)",
    "receipt.line.idle_fee": "Standgebühr ({minutes} Min.)",
    "receipt.line.band": "{band}: {energy} kWh \u00d7 {price}",
    "receipt.line.other_times": "Übrige Zeiten",
    "receipt.day.mon": "Mo",
    "receipt.day.tue": "Di",
    "receipt.day.wed": "Mi",
    "receipt.day.thu": "Do",
    "receipt.day.fri": "Fr",
    "receipt.day.sat": "Sa",
    "receipt.day.sun": "So",
    "receipt.total": "Summe",
    "receipt.captured": "Von Ihrer Karte abgebucht",
    "receipt.released": "Freigegeben",
    "receipt.transaction": "Transaktion",
    "receipt.reference": "Referenz",
    "receipt.print": "Drucken",
    "receipt.email_sent": "Stripe schickt eine Quittung an {email}.",
    "receipt.refund": "Erstattet am {date}",
    "receipt.refund_pending": "Erstattung läuft (beantragt am {date})",
    "receipt.paid": "Bezahlt nach Erstattungen",
    "receipt.vat": "inkl. MwSt. {rate} %",
    "operator.support": "Fragen zu diesem Ladevorgang",
    "operator.terms": "Nutzungsbedingungen",
    "operator.privacy": "Datenschutz",
    "start.plug": "{plug} · bis {power} kW",
    "plug.Type1": "Typ 1",
    "plug.Type2": "Typ 2",
    "plug.CCS1": "CCS Combo 1",
    "plug.CCS2": "CCS Combo 2",
    "plug.CHAdeMO": "CHAdeMO",
    "plug.GB/T": "GB/T",
    "plug.Schuko": "Schuko",
    "plug.Tesla": "Tesla",
    "plug.Other": "Anderer Stecker",
    "start.model": "Ladestation: {model}",
    "start.incl_vat": "Preise inkl. MwSt. ({rate} %).",
    "unpaid.title": "Ihre Zahlung ist nicht abgeschlossen",
    "unpaid.text": (
        "Anschluss {connector} von {charger} ist noch höchstens {minutes} Min. für Sie "
        "reserviert. Setzen Sie die Zahlung fort oder brechen Sie ab, um ihn freizugeben."
    ),
    "unpaid.continue": "Weiter zur Zahlung",
    "busy.unpaid_until": (
        "Jemand bezahlt gerade dafür: Schließt diese Person nicht ab, ist er in höchstens "
        "{minutes} Min. wieder frei."
    ),
    "busy.refreshing": "Diese Seite aktualisiert sich, sobald der Anschluss frei ist.",
    "receipt.site": "Standort",
    "start.time_zone": "Zeitzone vor Ort: {zone}",
    "start.support": "Hilfe zu dieser Ladestation",
}
