import pytest

from csms.ocpp16.handshake import charge_point_id_from_path, select_subprotocol


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/ocpp/CP-1", "CP-1"),
        ("/ocpp/CP%2D1", "CP-1"),
        ("/ocpp/CP-1/", "CP-1"),
        ("/ocpp/CP-1?x=1", "CP-1"),
        ("/ocpp/a.b_c*d=e+f|g@h", "a.b_c*d=e+f|g@h"),
        ("/ocpp/" + "A" * 48, "A" * 48),
        ("/ocpp/" + "A" * 49, None),
        ("/ocpp/", None),
        ("/ocpp", None),
        ("/other/CP-1", None),
        ("/ocpp/a/b", None),
        ("/ocpp/RDAM%20123", "RDAM 123"),  # OCPP-J 1.6's own example
        ("/ocpp/%20CP1", None),  # a space only between characters
        ("/ocpp/CP1%20", None),
        ("/ocpp/CP%20%201", None),
        ("/ocpp/CP%091", None),  # tab: not printable
        ("/ocpp/CP%3A1", None),  # a colon would end the Basic auth username
        ("/ocpp/CP%2F1", None),  # slash smuggled in
        ("/ocpp/%FF", None),  # not UTF-8
        ("/ocpp/caf%C3%A9", None),
    ],
)
def test_charge_point_id_from_path(path: str, expected: str | None) -> None:
    assert charge_point_id_from_path(path, "/ocpp") == expected


def test_prefix_with_trailing_slash() -> None:
    assert charge_point_id_from_path("/a/b/CP-1", "/a/b/") == "CP-1"


def test_subprotocol() -> None:
    assert select_subprotocol(["ocpp2.0.1", "ocpp1.6"]) == "ocpp1.6"
    assert select_subprotocol(["ocpp2.0.1"]) is None
    assert select_subprotocol([]) is None
