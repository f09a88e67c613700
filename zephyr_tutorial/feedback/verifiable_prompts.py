"""Verifiable prompts for the AI-feedback stage on the ``cpu`` profile: instructions whose answers code can check.

UltraFeedback's prompts are open questions that only GPT-4 could grade. Ours come in families whose
answers :class:`~zephyr_tutorial.evaluation.rule_judge.RuleJudge` verifies (IFEval's idea, our wording):

=============  ======================================================  =====================================
family         example                                                 checked
=============  ======================================================  =====================================
one_sentence   In one sentence, explain how rainbows form.             one sentence
word_limit     Explain why the sky is blue in fewer than 15 words.     at most 14 words
lowercase      Using only lowercase letters, describe ...              no capital letter, 1-2 sentences
end_phrase     ... End your reply with the exact words "That is all."  the ending, at most 3 sentences
bullets        List 4 fruits as a bulleted list, one per line ...      exactly 4 lines, each a "- " bullet
comma_list     Name exactly three colours, separated by commas ...     three comma-separated items
include_word   Write two sentences about winter. Use the word "snow".  the word, 1-2 sentences
exclude_word   Describe winter in two sentences without "snow".        not the word, 1-2 sentences
capital        What is the capital of Peru? Answer with the city ...   the reference city, short answer
yes_no         Answer with Yes or No only. Is the Sun a star?          the reference answer, one word
arithmetic     What is 46 minus 12? Reply with the number only.        the reference number, nothing else
start_word     Begin your answer with the word "Sure". How do I ...    the first word, at most 3 sentences
=============  ======================================================  =====================================

:func:`build_verifiable_prompts` writes every prompt of every family from the topic lists below
(deterministic for a seed), with its ``checks`` and ``reference`` and a ``split`` drawn by
:func:`~zephyr_tutorial.schemas.split_by_prompt_id`, so that held-out prompts are fixed once and for all.
``data/verifiable_prompts.jsonl`` is its output; ``data/preferences/README.md`` says how it was used.
"""

from __future__ import annotations

import random

from ..schemas import prompt_id_for, split_by_prompt_id

EXPLAIN_TOPICS = [
    "how rainbows form",
    "why the sky is blue",
    "what a volcano is",
    "how bees make honey",
    "why we need sleep",
    "what gravity does",
    "how a compass works",
    "why leaves are green",
    "what causes thunder",
    "how plants take up water",
    "what a fossil is",
    "why ice floats on water",
    "how bread rises",
    "what a lighthouse is for",
    "why cats have whiskers",
    "how a bicycle moves",
    "what recycling is",
    "why the sea is salty",
    "how a library lends books",
    "what a map shows",
    "how clouds form",
    "why we have seasons",
    "what an echo is",
    "how a thermometer works",
    "why bread goes stale",
    "what a desert is",
    "how birds fly",
    "why the moon changes shape",
    "what a glacier is",
    "how soap cleans hands",
    "why people yawn",
    "what a calendar is for",
    "how a candle burns",
    "why metal feels cold",
    "what a rainforest is",
    "how a seed grows into a plant",
    "why we brush our teeth",
    "what an island is",
    "how a kite flies",
    "why bananas turn brown",
    "what a museum does",
    "how wind is made",
    "why apples fall from trees",
    "what a battery does",
    "how fish breathe",
    "why snow is white",
    "what a river delta is",
    "how an umbrella helps",
    "why dogs wag their tails",
    "what a harbour is",
    "how a sundial tells time",
    "why onions make eyes water",
    "what photosynthesis is",
    "how a bridge carries weight",
    "why we sweat",
    "what a comet is",
    "how coffee is made",
    "why stars twinkle",
    "what a vaccine does",
    "how a piano makes sound",
    "how a refrigerator keeps food cold",
    "why the grass is wet in the morning",
    "what a hurricane is",
    "how a camera takes a picture",
    "why we have fingerprints",
    "what a coral reef is",
    "how a microwave heats food",
    "why the Dead Sea is easy to float in",
    "what a solar eclipse is",
    "how a parachute slows a fall",
    "why owls hunt at night",
    "what a tide is",
    "how a zipper works",
    "why paper burns",
    "what an earthquake is",
    "how a caterpillar becomes a butterfly",
    "why milk turns sour",
    "what a telescope does",
    "how a toaster works",
    "why the desert is cold at night",
]
LIST_CATEGORIES = [
    "fruits",
    "vegetables",
    "colours",
    "sea animals",
    "musical instruments",
    "sports played with a ball",
    "countries in Europe",
    "kitchen tools",
    "planets",
    "birds",
    "flowers",
    "board games",
    "jobs in a hospital",
    "things found in a classroom",
    "farm animals",
    "kinds of weather",
    "shapes",
    "metals",
    "trees",
    "dog breeds",
    "breakfast foods",
    "insects",
    "things to pack for a beach trip",
    "hobbies",
    "means of transport",
]
WORD_TOPICS = [  # (topic, a word an answer naturally uses)
    ("the beach", "sand"),
    ("a rainy day", "umbrella"),
    ("winter", "snow"),
    ("a birthday party", "cake"),
    ("a garden", "flowers"),
    ("a library", "books"),
    ("the night sky", "stars"),
    ("a farm", "cows"),
    ("a kitchen", "cook"),
    ("a forest", "trees"),
    ("the ocean", "waves"),
    ("a school", "teacher"),
    ("a city", "streets"),
    ("a train journey", "station"),
    ("autumn", "leaves"),
    ("a football match", "goal"),
    ("a picnic", "basket"),
    ("a mountain", "climb"),
    ("a zoo", "animals"),
    ("a bakery", "bread"),
]
CAPITALS = [
    ("France", "Paris"),
    ("Japan", "Tokyo"),
    ("Italy", "Rome"),
    ("Spain", "Madrid"),
    ("Germany", "Berlin"),
    ("Egypt", "Cairo"),
    ("Canada", "Ottawa"),
    ("Kenya", "Nairobi"),
    ("Peru", "Lima"),
    ("Norway", "Oslo"),
    ("Greece", "Athens"),
    ("Portugal", "Lisbon"),
    ("Russia", "Moscow"),
    ("China", "Beijing"),
    ("India", "New Delhi"),
    ("Ireland", "Dublin"),
    ("Austria", "Vienna"),
    ("Sweden", "Stockholm"),
    ("Poland", "Warsaw"),
    ("Cuba", "Havana"),
    ("Thailand", "Bangkok"),
    ("Argentina", "Buenos Aires"),
    ("Chile", "Santiago"),
    ("Finland", "Helsinki"),
    ("Hungary", "Budapest"),
    ("Denmark", "Copenhagen"),
    ("Belgium", "Brussels"),
    ("Turkey", "Ankara"),
    ("Australia", "Canberra"),
    ("Mexico", "Mexico City"),
    ("South Korea", "Seoul"),
    ("Vietnam", "Hanoi"),
    ("Morocco", "Rabat"),
    ("Nigeria", "Abuja"),
    ("Brazil", "Brasília"),
    ("the United Kingdom", "London"),
]
YES_NO = [
    ("Is the Sun a star?", "Yes"),
    ("Do fish breathe with lungs?", "No"),
    ("Is water made of hydrogen and oxygen?", "Yes"),
    ("Is the Moon bigger than the Earth?", "No"),
    ("Do plants need sunlight to grow?", "Yes"),
    ("Is ice colder than boiling water?", "Yes"),
    ("Can penguins fly?", "No"),
    ("Is Paris in France?", "Yes"),
    ("Does a triangle have four sides?", "No"),
    ("Is a whale a mammal?", "Yes"),
    ("Is the Pacific an ocean?", "Yes"),
    ("Do spiders have six legs?", "No"),
    ("Is gold a metal?", "Yes"),
    ("Is a tomato a vegetable in botany?", "No"),
    ("Does the Earth orbit the Sun?", "Yes"),
    ("Is a week eight days long?", "No"),
    ("Do bees make honey?", "Yes"),
    ("Is the Sahara a desert?", "Yes"),
    ("Is snow hot?", "No"),
    ("Can humans breathe underwater without equipment?", "No"),
    ("Is English written from left to right?", "Yes"),
    ("Is a square a kind of circle?", "No"),
    ("Are there seven days in a week?", "Yes"),
    ("Is iron magnetic?", "Yes"),
    ("Is the Nile a river?", "Yes"),
    ("Do cows eat meat?", "No"),
    ("Is the number ten even?", "Yes"),
    ("Is three larger than five?", "No"),
]
QUESTIONS = [
    "What is a good way to learn a new language?",
    "How can I save money on groceries?",
    "What should I pack for a hike?",
    "How do I make a cup of tea?",
    "What is a healthy breakfast?",
    "How can I sleep better?",
    "How do I take care of a houseplant?",
    "What is a fun weekend activity?",
    "How can I stay focused while studying?",
    "What makes a good friend?",
    "How do I start running?",
    "What is a simple way to reduce waste at home?",
    "How should I prepare for a job interview?",
    "What is a good gift for a teacher?",
    "How do I keep my desk tidy?",
    "How can I drink more water each day?",
    "What should I do on a rainy afternoon?",
    "How do I learn to cook?",
    "How can I be more patient?",
    "What is a good way to remember names?",
    "How do I plan a small party?",
    "What should I look for in a good book?",
    "How can I make my mornings less rushed?",
    "How do I clean a window?",
]
START_WORDS = ["Certainly", "Sure", "Well", "Today", "First", "Honestly"]
END_PHRASES = ["Hope this helps!", "That is all.", "Thank you for asking.", "Have a nice day!"]
WORD_LIMITS = [12, 15, 20, 25]


def build_verifiable_prompts(seed: int = 0, test_fraction: float = 0.2, split_seed: int = 42) -> list[dict]:
    """Every prompt of every family: rows ``{id, prompt_id, prompt, family, checks, reference, split}``.

    Deterministic for ``seed`` (word limits, list lengths, end phrases and sums are drawn from it); a prompt
    that two families would both write is kept once. ``id`` is the ``prompt_id`` (the SHA-256 of the prompt, as
    in ultrafeedback_binarized), so the pipeline's rows carry it. ``split`` is ``"test"`` for about
    ``test_fraction`` of the prompts: :func:`~zephyr_tutorial.schemas.split_by_prompt_id` with ``split_seed``,
    the very split ``zephyr-tutorial feedback --test-fraction 0.2 --seed 42`` gives their preference pairs.
    """
    rng = random.Random(seed)
    rows: list[dict] = []

    def add(family: str, prompt: str, checks: dict, reference: str | None = None) -> None:
        rows.append({"prompt": prompt, "family": family, "checks": checks, "reference": reference})

    for topic in EXPLAIN_TOPICS:
        add("one_sentence", f"In one sentence, explain {topic}.", {"max_sentences": 1})
        limit = rng.choice(WORD_LIMITS)
        add("word_limit", f"Explain {topic} in fewer than {limit} words.", {"max_words": limit - 1})
    for topic in EXPLAIN_TOPICS[::2]:
        add(
            "lowercase",
            f"Using only lowercase letters, describe {topic} in one or two sentences.",
            {"lowercase": True, "max_sentences": 2},
        )
    for topic in EXPLAIN_TOPICS[1::2]:
        phrase = rng.choice(END_PHRASES)
        add(
            "end_phrase",
            f'In two sentences, tell me {topic}. End your reply with the exact words "{phrase}"',
            {"ends_with": phrase, "max_sentences": 3},
        )
    for category in LIST_CATEGORIES:
        count = rng.choice([3, 4, 5])
        add(
            "bullets",
            f'List {count} {category} as a bulleted list, one per line, each line starting with "- ". '
            "Write nothing else.",
            {"bullets": count},
        )
        add("comma_list", f"Name exactly three {category}, separated by commas, and nothing else.", {"comma_items": 3})
    for topic, word in WORD_TOPICS:
        add(
            "include_word",
            f'Write two sentences about {topic}. Use the word "{word}".',
            {"include": [word], "max_sentences": 2},
        )
        add(
            "exclude_word",
            f'Describe {topic} in two sentences without using the word "{word}".',
            {"exclude": [word], "max_sentences": 2},
        )
    for country, city in CAPITALS:
        add(
            "capital",
            f"What is the capital of {country}? Answer with the city name only.",
            {"max_words": len(city.split()) + 1},
            reference=city,
        )
    for question, answer in YES_NO:
        add("yes_no", f"Answer with Yes or No only. {question}", {"max_words": 1}, reference=answer)
    for _ in range(40):
        a, b = rng.randint(2, 60), rng.randint(2, 40)
        operation = rng.choice(["plus", "minus", "times"]) if a < 13 and b < 13 else rng.choice(["plus", "minus"])
        value = {"plus": a + b, "minus": a - b, "times": a * b}[operation]
        add(
            "arithmetic",
            f"What is {a} {operation} {b}? Reply with the number only.",
            {"number_only": True},
            reference=str(value),
        )
    for question in QUESTIONS:
        word = rng.choice(START_WORDS)
        add(
            "start_word",
            f'Begin your answer with the word "{word}". {question} Answer in at most three sentences.',
            {"starts_with": word, "max_sentences": 3},
        )
    unique: dict[str, dict] = {}
    for row in rows:
        if row["prompt"] not in unique:
            prompt_id = prompt_id_for(row["prompt"])
            unique[row["prompt"]] = {"id": prompt_id, "prompt_id": prompt_id, **row}
    ordered = list(unique.values())
    train, test = split_by_prompt_id(ordered, test_fraction, split_seed)
    held_out = {row["prompt_id"] for row in test}
    return [{**row, "split": "test" if row["prompt_id"] in held_out else "train"} for row in ordered]
