"""The reply forms' readers: a Slack form's metadata (the /calc arguments last, "|" and
all), the images of a card's thread as conversations.replies gives them, and the number
and time an agent types in Telegram's call-back conversation."""

from __future__ import annotations

from socialcare.handlers.slack_views import (
    MAX_THREAD_PICTURES,
    reply_metadata,
    thread_pictures,
)
from socialcare.handlers.telegram import number_and_time


def test_reply_metadata_reads_old_forms_and_keeps_a_bar_inside_the_calc_arguments() -> None:
    old = reply_metadata("12|C1")
    calc = reply_metadata("12|C1||calculation|12 tariff=A|B gb=1")
    assert (old.case_id, old.channel, old.official, old.form, old.calc_args) == \
        (12, "C1", None, "text", "")
    assert (calc.form, calc.calc_args) == ("calculation", "12 tariff=A|B gb=1")


def test_thread_pictures_are_the_images_under_the_card_newest_first() -> None:
    card = {"ts": "1.0", "files": [{"id": "F0", "mimetype": "image/png", "name": "card.png"}]}
    messages = [
        card,
        {"ts": "2.0", "subtype": "file_share", "files": [
            {"id": "F1", "mimetype": "image/png", "name": "one.png"},
            {"id": "F2", "mimetype": "application/pdf", "name": "doc.pdf"}]},
        {"ts": "3.0", "text": "no files"},
        {"ts": "4.0", "files": [{"id": "F3", "mimetype": "image/jpeg", "title": "Router",
                                  "name": "IMG_1.jpg"}, "not a file", {"mimetype": "image/png"}]},
        "not a message",
    ]
    assert thread_pictures(messages, "1.0") == (("Router", "F3"), ("one.png", "F1"))
    many = [{"ts": f"{n}.5", "files": [{"id": f"F{n}", "mimetype": "image/gif"}]}
            for n in range(50)]
    assert len(thread_pictures(many, "0")) == MAX_THREAD_PICTURES


def test_the_number_and_the_time_come_apart_by_a_bar_or_a_new_line() -> None:
    assert number_and_time("+7 777 123 45 12 | after 18:00") == \
        ("+7 777 123 45 12", "after 18:00")
    assert number_and_time("87771234512\n  tomorrow   morning ") == \
        ("87771234512", "tomorrow morning")
    assert number_and_time("+77771234512") == ("+77771234512", "")
    assert len(number_and_time("1 | " + "x" * 1000)[1]) == 200
