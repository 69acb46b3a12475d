import pytest

from edgenas.device.profile import PROFILES
from edgenas.errors import EdgenasError
from edgenas.measure.place import place, ways_to_measure


def test_the_advice_for_a_device_edgenas_does_not_measure_names_only_what_works():
    phone = ways_to_measure(PROFILES.get("pixel"))
    assert "via: rpc" not in phone and "via: local" not in phone, "a phone runs no edgenas and no TVM RPC for LiteRT"
    assert phone == "time it there with litert and add the latencies with edgenas store import FILE --target pixel"
    board = ways_to_measure(PROFILES.get("raspi4"))
    assert "measure.via: local" in board and "measure.via: rpc" in board and "store import FILE --target raspi4" in board


def test_a_predict_only_profile_is_refused_with_that_advice():
    profile = PROFILES.get("pixel")
    with pytest.raises(EdgenasError, match="profile 'pixel' is predict-only .*; time it there with litert"):
        place(profile, None)
