"""How long every judge-reply parser takes on hostile replies: a 10 MB reply and the worst shapes under the cap.

    python benchmarks/parser_hostile_inputs.py [--repeat 5]

Prints, for each parser and input, the slowest of ``--repeat`` calls in milliseconds and whether it raised
(it must not: every reply is a verdict or a parse failure), then the slowest call overall against the 50 ms
target of issue 15. Before that issue the UltraFeedback parser took 14-49 s on 20,000 unbalanced braces and
never finished on 10 MB. Timings vary with machine load.
"""

from __future__ import annotations

import argparse
import time

from zephyr_tutorial.evaluation.parsing import (
    MAX_REPLY_CHARS,
    parse_alpaca_ranking,
    parse_pairwise_verdict,
    parse_rating,
)
from zephyr_tutorial.evaluation.rating import RatingParseError, parse_ratings

TARGET_MS = 50.0


def hostile_replies() -> dict[str, str]:
    cap = MAX_REPLY_CHARS
    pieces = {
        "unbalanced braces": "{",
        "unbalanced brackets": "[",
        "lists of dicts": "[{'",
        "JSON openers": '{"ratings": [',
        "double quotes": '"',
        "curly quotes": "“",
        "block quotes": "\n>",
        "answer sections": "[The Start of x]",
        "verdicts": "[[A]] ",
        "aspect labels": "Honesty: ",
        "text headings": "Text 1\n",
        "nested dicts": "{'a': ",
        "backslashes": "\\",
    }
    replies = {name: (piece * (cap // len(piece) + 1))[: cap - 1] for name, piece in pieces.items()}
    replies["10 MB reply"] = "x" * 10_000_000
    replies["10 MB of braces"] = "{" * 10_000_000
    replies["deep literal"] = "[" * (cap // 2 - 1) + "]" * (cap // 2 - 1)
    replies["long number"] = "Rating: [[" + "9" * (cap - 20) + "]]"
    return replies


def parse_ratings_of_four(reply: str):
    try:
        return parse_ratings(reply, 4)
    except RatingParseError:
        return None


PARSERS = {
    "alpaca_ranking": parse_alpaca_ranking,
    "mt_bench_single": parse_rating,
    "mt_bench_pairwise": parse_pairwise_verdict,
    "ultrafeedback": parse_ratings_of_four,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    replies = hostile_replies()
    worst, exceptions = (0.0, "", ""), 0
    print(f"{'input':<22}" + "".join(f"{name:>20}" for name in PARSERS) + "   (slowest call, ms)")
    for input_name, reply in replies.items():
        cells = []
        for parser_name, parse in PARSERS.items():
            slowest = 0.0
            for _ in range(args.repeat):
                start = time.perf_counter()
                try:
                    parse(reply)
                except Exception as error:  # counted: there must be none
                    exceptions += 1
                    print(f"  {parser_name} raised {type(error).__name__} on {input_name}")
                slowest = max(slowest, (time.perf_counter() - start) * 1000)
            cells.append(f"{slowest:>20.2f}")
            worst = max(worst, (slowest, parser_name, input_name))
        print(f"{input_name:<22}" + "".join(cells))
    ms, parser_name, input_name = worst
    verdict = "within" if ms < TARGET_MS else "OVER"
    print(f"\nslowest call: {ms:.2f} ms ({parser_name} on {input_name}), {verdict} the {TARGET_MS:g} ms target")
    print(f"exceptions: {exceptions}")


if __name__ == "__main__":
    main()
