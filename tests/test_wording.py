from jupyterhub_workshop.wording import count


def test_counts_agree_with_their_number():
    assert count(1, "second") == "1 second"
    assert count(0, "second") == "0 seconds"
    assert count(2, "account") == "2 accounts"
    assert count(1, "person", "people") == "1 person" and count(3, "person", "people") == "3 people"
