"""Free answers to multiple-choice items: does a reply open with one of the choices?"""

from zephyr_tutorial.evaluation import starts_with_choice

CHOICES = ("Berlin", "Madrid", "Paris", "Rome")


def test_a_reply_opening_with_a_letter_label_picks_that_choice():
    for reply in ("C. Paris", "C", " (C) Paris", "**C**: Paris", "[C] it is", "C)\nParis"):
        assert starts_with_choice(reply, CHOICES) == 2, reply


def test_a_reply_opening_with_a_choice_text_picks_it_regardless_of_case():
    assert starts_with_choice("paris, of course.", CHOICES) == 2
    assert starts_with_choice("Rome.", CHOICES) == 3
    assert starts_with_choice("Romesque buildings", CHOICES) is None  # a prefix of a longer word is not the choice


def test_anything_else_is_not_a_choice():
    for reply in ("A carnivore is an animal", "The capital of France is Paris.", "Sure! The answer is C.", "", "E."):
        assert starts_with_choice(reply, CHOICES) is None, reply
    assert starts_with_choice("2 + 3 = 5", ("4", "5", "6")) is None
