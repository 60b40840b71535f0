"""A simulated OCPP 1.6J charge point (and fleets of them) that talks to a CSMS over the wire."""

from .behaviour import Behaviour
from .charger import SimulatedCharger
from .connector import Connector, Transaction
from .errors import AuthorizationRejected, ChargerOffline, SimulatorError
from .fleet import Scenario, run_fleet
from .session import SentCall

__all__ = [
    "AuthorizationRejected",
    "Behaviour",
    "ChargerOffline",
    "Connector",
    "Scenario",
    "SentCall",
    "SimulatedCharger",
    "SimulatorError",
    "Transaction",
    "run_fleet",
]
