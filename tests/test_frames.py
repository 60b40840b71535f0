import pytest

from csms.ocpp16.frames import (
    Call,
    CallError,
    CallResult,
    ErrorCode,
    FrameError,
    decode,
    encode_call,
    encode_error,
)


def test_round_trip() -> None:
    assert decode(encode_call("a1", "Heartbeat", {})) == Call("a1", "Heartbeat", {})
    assert decode('[3,"a1",{"x":1}]') == CallResult("a1", {"x": 1})
    assert decode('[4,"a1","NotSupported","no",{}]') == CallError("a1", "NotSupported", "no", {})
    assert decode(encode_error("a1", ErrorCode.FORMATION_VIOLATION, "bad")) == CallError(
        "a1", "FormationViolation", "bad", {}
    )


@pytest.mark.parametrize(
    ("raw", "reply_to"),
    [
        ("not json", None),
        (b'[2,"1","Heartbeat",{}]', None),  # binary frame
        ('{"a": 1}', None),
        ("[2]", None),
        ('[2, 17, "Heartbeat", {}]', 17),  # unique id must be a string: answered under it
        ('[2, "' + "x" * 37 + '", "Heartbeat", {}]', "x" * 37),
        ('[2, "", "Heartbeat", {}]', ""),
        ('[2, "1", "Heartbeat"]', "1"),
        ('[2, "1", 5, {}]', "1"),
        ('[2, "1", "Heartbeat", []]', "1"),
        ('[3, "1", "not an object"]', None),  # a broken reply is never answered
        ('[4, "1", "X"]', None),
        ('[9, "1", "Heartbeat", {}]', None),
    ],
)
def test_malformed_frames(raw: str | bytes, reply_to: object) -> None:
    with pytest.raises(FrameError) as caught:
        decode(raw)
    assert caught.value.code is ErrorCode.FORMATION_VIOLATION
    assert caught.value.reply_to == reply_to


def test_error_codes_are_spelled_as_ocpp_j_1_6() -> None:
    assert {code.value for code in ErrorCode} == {
        "NotImplemented",
        "NotSupported",
        "InternalError",
        "ProtocolError",
        "SecurityError",
        "FormationViolation",
        "PropertyConstraintViolation",
        "OccurenceConstraintViolation",
        "TypeConstraintViolation",
        "GenericError",
    }
